package httpapi

import (
	"slices"
	"testing"
)

// Every path parameter of a route is bound to its check, and one that
// pathParams does not know is an error (NewMux panics with it).
func TestRouteParams(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		want          []string // parameter names; nil with wantErr
		wantErr       bool
	}{
		{"None", "POST /v1/notifications", nil, false},
		{"Exact", "GET /{$}", nil, false},
		{"NotificationID", "GET /v1/notifications/{id}", []string{"id"}, false},
		{"BatchID", "DELETE /v1/batches/{id}", []string{"id"}, false},
		{"UserIDInTheMiddle", "GET /v1/users/{userId}/consents", []string{"userId"}, false},
		{"OpenID", "GET /v1/openids/{openid}/consents", []string{"openid"}, false},
		{"WebhookDelivery", "POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay", []string{"id", "deliveryId"}, false},
		{"UnknownCollection", "GET /v1/things/{id}", nil, true},
		{"UnknownName", "GET /v1/notifications/{ntf}", nil, true},
		{"Rest", "GET /v1/notifications/{id...}", []string{"id"}, false},
		{"FirstSegment", "GET /{id}", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params, err := routeParams(tc.pattern)
			if (err != nil) != tc.wantErr {
				t.Fatalf("routeParams(%q): got error %v, want error %v", tc.pattern, err, tc.wantErr)
			}
			var names []string
			for _, p := range params {
				names = append(names, p.name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("routeParams(%q): got %q, want %q", tc.pattern, names, tc.want)
			}
		})
	}
	for _, pattern := range Routes(AllGroups...) {
		if _, err := routeParams(pattern); err != nil {
			t.Errorf("registered route: %v", err)
		}
	}
}
