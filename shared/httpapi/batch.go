package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// MaxBatchBodyBytes is the body limit of POST /v1/batches: room for about
// 100,000 explicit recipients.
const MaxBatchBodyBytes = 8 << 20

type batchBody struct {
	Template   string `json:"template"`
	Data       map[string]dataValue
	Recipients []struct {
		UserID string               `json:"userId"`
		OpenID string               `json:"openid"`
		Data   map[string]dataValue `json:"data"`
	} `json:"recipients"`
	Audience         string    `json:"audience"`
	NotBefore        time.Time `json:"notBefore"`
	Page             string    `json:"page"`
	MiniprogramState string    `json:"miniprogramState"`
	Lang             string    `json:"lang"`
	IdempotencyKey   string    `json:"idempotencyKey"`
}

func plainData(m map[string]dataValue) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// ParseBatchBody decodes a POST /v1/batches body.
func ParseBatchBody(body []byte) (notify.BatchRequest, error) {
	var b batchBody
	if err := unmarshalStrict(body, &b); err != nil {
		return notify.BatchRequest{}, err
	}
	req := notify.BatchRequest{Template: b.Template, Data: plainData(b.Data), Audience: b.Audience, NotBefore: b.NotBefore,
		Page: b.Page, MiniprogramState: b.MiniprogramState, Lang: b.Lang, IdempotencyKey: b.IdempotencyKey}
	req.Recipients = make([]notify.BatchRecipient, len(b.Recipients))
	for i, r := range b.Recipients {
		req.Recipients[i] = notify.BatchRecipient{UserID: r.UserID, OpenID: r.OpenID, Data: plainData(r.Data)}
	}
	return req, nil
}

type batchJSON struct {
	ID        string             `json:"id"`
	Status    notify.BatchStatus `json:"status"`
	Template  string             `json:"template"`
	Audience  string             `json:"audience,omitempty"`
	NotBefore time.Time          `json:"notBefore"`
	// QuotaResetAt: a page met WeChat's daily quota (45009); the batch
	// goes on then.
	QuotaResetAt time.Time `json:"quotaResetAt,omitzero"`
	Total        int       `json:"total"`
	Sent         int       `json:"sent"`
	Skipped      int       `json:"skipped"`
	Failed       int       `json:"failed"`
	Unknown      int       `json:"unknown"`
	Pending      int       `json:"pending"`
	// Shards is the number of parts many runners send at once, of which
	// ShardsDone are done.
	Shards     int       `json:"shards"`
	ShardsDone int       `json:"shardsDone"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// BatchJSON is the API body of a batch.
func BatchJSON(b notify.Batch) any {
	return batchJSON{ID: b.ID, Status: b.Status, Template: b.Template, Audience: b.Audience, NotBefore: b.NotBefore,
		QuotaResetAt: b.QuotaResetAt,
		Total:        b.Total, Sent: b.Sent, Skipped: b.Skipped, Failed: b.Failed, Unknown: b.Unknown, Pending: b.Pending(),
		Shards: max(1, b.Shards), ShardsDone: shardsDone(b), CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

// shardsDone is the number of a batch's shards done: all of a done batch.
func shardsDone(b notify.Batch) int {
	if b.Status == notify.BatchDone {
		return max(1, b.Shards)
	}
	return b.ShardsDone
}

// POST /v1/batches
func (a *API) handleCreateBatch(w http.ResponseWriter, r *http.Request) {
	body, err := requestBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req, err := ParseBatchBody(body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	b, err := svc(r).CreateBatch(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, BatchJSON(b))
}

// defaultBatchListLimit is the page size of GET /v1/batches without limit.
const defaultBatchListLimit = 20

// GET /v1/batches?limit=&cursor=: the app's batches, newest first.
func (a *API) handleListBatches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultBatchListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || len(v) > 4 {
			writeError(w, r, notify.FieldError("limit", "must be a number from 1 to %d", notify.MaxBatchListLimit))
			return
		}
		limit = n
	}
	page, err := svc(r).ListBatches(r.Context(), q.Get("cursor"), limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := struct {
		Batches []any  `json:"batches"`
		Next    string `json:"next,omitempty"`
	}{Batches: make([]any, 0, len(page.Batches)), Next: page.Next}
	for _, b := range page.Batches {
		out.Batches = append(out.Batches, BatchJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /v1/batches/{id}
func (a *API) handleGetBatch(w http.ResponseWriter, r *http.Request) {
	b, err := svc(r).Batch(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BatchJSON(b))
}

// DELETE /v1/batches/{id}
func (a *API) handleCancelBatch(w http.ResponseWriter, r *http.Request) {
	b, err := svc(r).CancelBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BatchJSON(b))
}

// POST /v1/batches/{id}/pause
func (a *API) handlePauseBatch(w http.ResponseWriter, r *http.Request) {
	b, err := svc(r).PauseBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BatchJSON(b))
}

// POST /v1/batches/{id}/resume
func (a *API) handleResumeBatch(w http.ResponseWriter, r *http.Request) {
	b, err := svc(r).ResumeBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, BatchJSON(b))
}
