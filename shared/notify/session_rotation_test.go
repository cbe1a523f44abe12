package notify_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
)

// Rotating the session secret signs nobody out: tokens the old secret
// signed verify while it is the previous one, new tokens are signed with
// the new secret, and once the previous secret is dropped its tokens fail.
func TestSessionSecretRotation(t *testing.T) {
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	oldSecret := testSessionSecret
	newSecret := bytes.Repeat([]byte("n"), 32)
	before, err := notify.NewSessions(oldSecret, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	oldToken, _ := before.Issue("wxapp", "o-user")

	during, err := notify.NewSessions(newSecret, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := during.AcceptPrevious(oldSecret); err != nil {
		t.Fatal(err)
	}
	if s, err := during.Verify(oldToken); err != nil || s.OpenID != "o-user" {
		t.Fatalf("old token during the rotation: got %+v, %v; want o-user", s, err)
	}
	newToken, _ := during.Issue("wxapp", "o-user")
	if _, err := before.Verify(newToken); err == nil {
		t.Fatal("a token issued during the rotation is signed with the old secret")
	}

	after, err := notify.NewSessions(newSecret, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.Verify(newToken); err != nil {
		t.Fatalf("new token after the rotation: %v", err)
	}
	if _, err := after.Verify(oldToken); err == nil {
		t.Fatal("the old secret's token still verifies after the previous secret was dropped")
	}
	if err := after.AcceptPrevious([]byte("short")); err == nil {
		t.Fatal("a previous secret under 32 bytes was accepted")
	}
}
