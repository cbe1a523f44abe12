package httpapi

import (
	"net/http"
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
	Total     int                `json:"total"`
	Sent      int                `json:"sent"`
	Skipped   int                `json:"skipped"`
	Failed    int                `json:"failed"`
	Unknown   int                `json:"unknown"`
	Pending   int                `json:"pending"`
	CreatedAt time.Time          `json:"createdAt"`
	UpdatedAt time.Time          `json:"updatedAt"`
}

// BatchJSON is the API body of a batch.
func BatchJSON(b notify.Batch) any {
	return batchJSON{ID: b.ID, Status: b.Status, Template: b.Template, Audience: b.Audience, NotBefore: b.NotBefore,
		Total: b.Total, Sent: b.Sent, Skipped: b.Skipped, Failed: b.Failed, Unknown: b.Unknown, Pending: b.Pending(),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
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
