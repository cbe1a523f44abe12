package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/store"
)

// HealthRoutes are the routes every mux serves besides its groups':
// liveness and readiness.
var HealthRoutes = []string{"GET /healthz", "GET /readyz"}

// readyTimeout bounds the store read of GET /readyz.
const readyTimeout = 2 * time.Second

// readyKey is the key GET /readyz reads: no item has it, and not found is
// an answer like any other.
var readyKey = store.Key{Partition: "readyz", Sort: "readyz"}

// handleReady answers GET /readyz: 200 {"ok":true} when the store answers
// one Get within readyTimeout (not found included), 503 store_unavailable
// otherwise. Without a store (Options.Store unset) there is nothing to
// wait for.
func (a *API) handleReady(w http.ResponseWriter, r *http.Request) {
	if a.store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), a.readyTimeout)
		defer cancel()
		if _, err := a.store.Get(ctx, readyKey); err != nil && !errors.Is(err, store.ErrNotFound) {
			writeError(w, r, &notify.Error{Code: notify.CodeStoreUnavailable, Message: "the state store did not answer",
				Err: err})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
