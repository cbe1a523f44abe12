package soak

import (
	"context"
	"flag"
	"os"
	"testing"
)

var (
	soakN     = flag.Int("soak.n", 1000, "API notifications of the soak (make soak: 10000)")
	soakUsers = flag.Int("soak.users", 100, "WeChat users of the soak")
	soakOut   = flag.String("soak.report", "", "also write the report to this file")
	soakWX    = flag.Float64("soak.wechatfaults", 0.3, "share of WeChat sends that fail")
	soakStore = flag.Float64("soak.storefaults", 0.05, "share of store calls that fail")
	soakLost  = flag.Float64("soak.lostreplies", 0.5, "share of the failed store writes applied before they fail (a lost reply)")
	soakSeed  = flag.Uint64("soak.seed", 1, "seed of the soak's choices and faults")
)

// TestSoak runs the soak with 30% of WeChat sends and 5% of store calls
// failing and fails on any broken guarantee.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	r, err := Run(context.Background(), Config{Notifications: *soakN, Users: *soakUsers, WeChatFaults: *soakWX,
		StoreFaults: *soakStore, LostReplies: *soakLost, Seed: *soakSeed, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.String())
	if *soakOut != "" {
		if err := os.WriteFile(*soakOut, []byte(r.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.Violations) > 0 {
		t.Fatalf("%d guarantees broken (see the report)", len(r.Violations))
	}
	if r.Delivered == 0 || r.Sent == 0 || r.StoreFaults == 0 || r.WeChatCalls <= r.Sent {
		t.Fatalf("the soak exercised too little: %d delivered, %d sent, %d store faults, %d WeChat calls", r.Delivered, r.Sent, r.StoreFaults, r.WeChatCalls)
	}
}
