package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed API-key attempts are limited per client address, in process
// memory: each function instance keeps its own counts, which is the intent
// (no store round trip on the authentication path, nothing an attacker can
// fill in the shared store). Keys are long random strings that cannot be
// guessed anyway; the limit cuts the cost and the noise of trying.
const (
	authFailLimit  = 10          // failed attempts per window and address
	authFailWindow = time.Minute // fixed window
	authFailAddrs  = 10000       // addresses tracked at most
)

// authLimiter counts failed authentications per client address.
type authLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	addrs map[string]*authFailures
}

type authFailures struct {
	count int
	reset time.Time // when the window ends
}

func newAuthLimiter(now func() time.Time) *authLimiter {
	return &authLimiter{now: now, addrs: map[string]*authFailures{}}
}

// blocked reports whether addr used up its failures of the current window,
// and how long until it may try again.
func (l *authLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.addrs[addr]
	now := l.now()
	if !ok || !now.Before(f.reset) {
		return 0, false
	}
	if f.count < authFailLimit {
		return 0, false
	}
	return f.reset.Sub(now), true
}

// fail counts a failed attempt of addr.
func (l *authLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.addrs[addr]
	if !ok || !now.Before(f.reset) {
		if !ok && len(l.addrs) >= authFailAddrs {
			l.evictLocked(now)
		}
		f = &authFailures{reset: now.Add(authFailWindow)}
		l.addrs[addr] = f
	}
	f.count++
}

// evictLocked makes room: expired windows first, else arbitrary entries
// (map order is random), so that memory stays bounded whatever the number
// of addresses; an evicted address starts a new window.
func (l *authLimiter) evictLocked(now time.Time) {
	for a, f := range l.addrs {
		if !now.Before(f.reset) {
			delete(l.addrs, a)
		}
	}
	for a := range l.addrs {
		if len(l.addrs) < authFailAddrs {
			break
		}
		delete(l.addrs, a)
	}
}

// clientAddr is the address failures are counted against: the peer's IP.
// On API Gateway, Function URLs and SCF the runtime adapters put the
// client IP the platform saw there. X-Forwarded-For is not read: any
// client can set it, so counting by it would let an attacker pick a fresh
// bucket for every attempt. Behind a proxy of one's own, every client
// shares the proxy's bucket.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
