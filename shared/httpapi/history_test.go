package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// GET /v1/notifications lists the recorded outcomes newest first, filtered,
// a page at a time with a cursor, each in the JSON of GET
// /v1/notifications/{id}; bad filters are 400 naming the parameter.
func TestListNotificationsRoute(t *testing.T) {
	r := newAPIRig(t)
	var made []string
	for _, to := range []string{"o-a", "o-b", "o-a"} {
		made = append(made, r.created(t, "/v1/notifications", `{"to":{"openid":"`+to+`"},"template":"lead","data":{"thing1":"x"}}`, http.StatusOK))
		r.clock.advance(time.Second)
	}
	type page struct {
		Notifications []map[string]any
		Next          string
	}
	get := func(target string) page {
		t.Helper()
		a := r.do(t, "192.0.2.60", "GET", target, testAPIKey, nil)
		var p page
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.raw), &p) != nil {
			t.Fatalf("GET %s: got %d %s, want 200 and a page", target, a.status, a.raw)
		}
		return p
	}
	first := get("/v1/notifications?openid=o-a&limit=1")
	if len(first.Notifications) != 1 || first.Notifications[0]["id"] != made[2] || first.Next == "" {
		t.Fatalf("first page: got %+v, want %s and a cursor", first, made[2])
	}
	one := r.do(t, "192.0.2.60", "GET", "/v1/notifications/"+made[2], testAPIKey, nil)
	var byID map[string]any
	_ = json.Unmarshal([]byte(one.raw), &byID)
	if b1, _ := json.Marshal(byID); string(b1) != mustJSON(t, first.Notifications[0]) {
		t.Fatalf("listed as %v, GET by id answers %v: want the same JSON", first.Notifications[0], byID)
	}
	second := get("/v1/notifications?openid=o-a&limit=1&cursor=" + url.QueryEscape(first.Next))
	if len(second.Notifications) != 1 || second.Notifications[0]["id"] != made[0] {
		t.Fatalf("second page: got %+v, want %s", second, made[0])
	}
	if all := get("/v1/notifications?status=skipped&template=lead"); len(all.Notifications) != 3 || all.Next != "" {
		t.Fatalf("skipped (nobody holds a credit): got %+v, want the 3", all)
	}
	for _, c := range []struct{ query, field string }{
		{"status=pending", "status"},
		{"limit=0", "limit"},
		{"limit=x", "limit"},
		{"since=yesterday", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"template=nope", "template"},
		{"cursor=nonsense", "cursor"},
		{"openid=a%7Cb", "openid"},
	} {
		a := r.do(t, "192.0.2.60", "GET", "/v1/notifications?"+c.query, testAPIKey, nil)
		if a.status != http.StatusBadRequest || a.body.Error.Field != c.field {
			t.Errorf("?%s: got %d %s, want 400 naming %s", c.query, a.status, a.raw, c.field)
		}
	}
	if a := r.do(t, "192.0.2.60", "GET", "/v1/notifications", "", nil); a.status != http.StatusUnauthorized {
		t.Errorf("without the API key: got %d, want 401", a.status)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
