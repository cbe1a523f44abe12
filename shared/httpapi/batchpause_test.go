package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Pause and resume of a batch: the same API key auth as DELETE (no key, a
// wrong one or a mini program's session token is 401), the batch as it is
// now, batch_finished (409) for a cancelled one, not_found for an id that
// names none; the app routes the same.
func TestBatchPauseResumeRoutes(t *testing.T) {
	r := newAPIRig(t)
	session, _ := r.sessions.Issue(testAppID, "o-user")
	bat := r.created(t, "/v1/batches", `{"template":"lead","data":{"thing1":"x"},"recipients":[{"openid":"o-p"}],"notBefore":"2099-01-01T00:00:00Z"}`, http.StatusAccepted)
	status := func(a answer) string {
		var b struct{ Status string }
		_ = json.Unmarshal([]byte(a.raw), &b)
		return b.Status
	}
	for _, tc := range []struct {
		name, method, target, auth string
		want                       int
		code, batchStatus          string
	}{
		{"PauseNoKey", "POST", "/v1/batches/" + bat + "/pause", "", 401, "unauthorized", ""},
		{"PauseWrongKey", "POST", "/v1/batches/" + bat + "/pause", "wxn_not_a_key_0000000", 401, "unauthorized", ""},
		{"PauseSessionToken", "POST", "/v1/batches/" + bat + "/pause", session, 401, "unauthorized", ""},
		{"ResumeNoKey", "POST", "/v1/batches/" + bat + "/resume", "", 401, "unauthorized", ""},
		{"Pause", "POST", "/v1/batches/" + bat + "/pause", testAPIKey, 200, "", "paused"},
		{"PauseAgain", "POST", "/v1/batches/" + bat + "/pause", testAPIKey, 200, "", "paused"},
		{"GetPaused", "GET", "/v1/batches/" + bat, testAPIKey, 200, "", "paused"},
		{"Resume", "POST", "/v1/batches/" + bat + "/resume", testAPIKey, 200, "", "scheduled"},
		{"PauseAppRoute", "POST", "/v1/apps/" + testAppID + "/batches/" + bat + "/pause", testAPIKey, 200, "", "paused"},
		{"ResumeAppRoute", "POST", "/v1/apps/" + testAppID + "/batches/" + bat + "/resume", testAPIKey, 200, "", "scheduled"},
		{"PauseUnknownApp", "POST", "/v1/apps/nope/batches/" + bat + "/pause", testAPIKey, 404, "app_not_found", ""},
		{"PauseToCancel", "POST", "/v1/batches/" + bat + "/pause", testAPIKey, 200, "", "paused"},
		{"CancelPaused", "DELETE", "/v1/batches/" + bat, testAPIKey, 200, "", "cancelled"},
		{"PauseCancelled", "POST", "/v1/batches/" + bat + "/pause", testAPIKey, 409, "batch_finished", ""},
		{"ResumeCancelled", "POST", "/v1/batches/" + bat + "/resume", testAPIKey, 409, "batch_finished", ""},
		{"PauseUnknown", "POST", "/v1/batches/bat_nope/pause", testAPIKey, 404, "not_found", ""},
		{"ResumeBadID", "POST", "/v1/batches/bat_%7C/resume", testAPIKey, 404, "not_found", ""},
		{"PauseInvalidUTF8", "POST", "/v1/batches/%ff%fe/pause", testAPIKey, 404, "not_found", ""},
		{"PauseWrongMethod", "GET", "/v1/batches/" + bat + "/pause", testAPIKey, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.do(t, "192.0.2.60", tc.method, tc.target, tc.auth, nil)
			if a.status != tc.want || (tc.code != "" && a.body.Error.Code != tc.code) || status(a) != tc.batchStatus && tc.want == 200 {
				t.Fatalf("%s %s: got %d %s, want %d %s %s", tc.method, tc.target, a.status, a.raw, tc.want, tc.code, tc.batchStatus)
			}
			if a.status >= 400 && a.body.Error.RequestID == "" {
				t.Fatalf("got %s, want the error body with a request id", a.raw)
			}
		})
	}
}
