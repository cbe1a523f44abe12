package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	cases := map[string]string{
		"169.254.169.254":        "metadata",
		"fd00:ec2::254":          "metadata",
		"::ffff:169.254.169.254": "metadata (IPv4-mapped)",
		"0.0.0.0":                "unspecified",
		"0.1.2.3":                "unspecified",
		"::":                     "unspecified",
		"127.0.0.1":              "loopback",
		"127.255.255.254":        "loopback",
		"::1":                    "loopback",
		"::ffff:127.0.0.1":       "loopback (IPv4-mapped)",
		"64:ff9b::7f00:1":        "loopback (NAT64)",
		"10.0.0.1":               "private",
		"172.16.0.1":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"::ffff:10.1.2.3":        "private (IPv4-mapped)",
		"::ffff:192.168.0.1":     "private (IPv4-mapped)",
		"100.64.0.1":             "CGNAT",
		"100.127.255.255":        "CGNAT",
		"::ffff:100.100.100.100": "CGNAT (IPv4-mapped)",
		"169.254.1.1":            "link-local",
		"fe80::1":                "link-local",
		"fe80::1%eth0":           "link-local",
		"fc00::1":                "unique-local",
		"fd12:3456::1":           "unique-local",
		"224.0.0.1":              "multicast",
		"239.255.255.250":        "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "reserved",
		"240.0.0.1":              "reserved",
		"::7f00:1":               "reserved",
		"2001:db8::1":            "reserved",
		// Public addresses pass, including ones just outside a range.
		"8.8.8.8":              "",
		"1.1.1.1":              "",
		"100.128.0.1":          "",
		"100.63.255.255":       "",
		"172.32.0.1":           "",
		"172.15.255.255":       "",
		"169.255.0.1":          "",
		"2606:4700::1111":      "",
		"::ffff:8.8.8.8":       "",
		"64:ff9b::808:808":     "",
		"fec0::1":              "", // deprecated site-local, routed as global
		"2a00:1450:4001::2004": "",
	}
	for s, want := range cases {
		if got := Classify(netip.MustParseAddr(s)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", s, got, want)
		}
	}
	if Classify(netip.Addr{}) == "" {
		t.Error("the zero Addr passes")
	}
}

// fakeResolver answers from a table; answers[i] is the i-th lookup's.
type fakeResolver struct {
	mu      sync.Mutex
	answers [][]string
	calls   int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := min(r.calls, len(r.answers)-1)
	r.calls++
	var out []netip.Addr
	for _, s := range r.answers[i] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// recordingDial stands in for the network: it records the address asked
// for and connects nowhere, so no test traffic leaves the machine.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

var errNoNetwork = errors.New("test dial: no network")

func (d *recordingDial) dial(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, addr)
	return nil, errNoNetwork
}

func testMessage(t *testing.T) Message {
	t.Helper()
	m, err := NewMessage(Event{Type: EventNotificationSent, ID: "ev", Timestamp: time.Now(), Data: NotificationData{NotificationID: "n"}}, "sub")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustForbidden(t *testing.T, err error, class string) *AddressError {
	t.Helper()
	var ae *AddressError
	if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if ae.Class != class {
		t.Fatalf("class %q, want %q (%v)", ae.Class, class, err)
	}
	if Retryable(err) || Disable(err) {
		t.Fatalf("forbidden address is retryable or disables: %v", err)
	}
	return ae
}

func TestClientRefusesEveryClassByLiteral(t *testing.T) {
	d := &recordingDial{}
	c := NewClient(ClientOptions{dial: d.dial, Resolver: &fakeResolver{answers: [][]string{{"8.8.8.8"}}}})
	secret := NewSecret()
	for ip, class := range map[string]string{
		"169.254.169.254": "metadata", "[fd00:ec2::254]": "metadata", "0.0.0.0": "unspecified",
		"[::]": "unspecified", "127.0.0.1": "loopback", "[::1]": "loopback", "10.0.0.1": "private",
		"172.16.5.4": "private", "192.168.0.10": "private", "100.64.1.1": "CGNAT",
		"169.254.10.10": "link-local", "[fe80::1]": "link-local", "[fc00::1]": "unique-local",
		"[fd00::1]": "unique-local", "224.0.0.251": "multicast", "[ff02::1]": "multicast",
		"[::ffff:127.0.0.1]": "loopback (IPv4-mapped)", "[::ffff:169.254.169.254]": "metadata (IPv4-mapped)",
		"[::ffff:10.0.0.1]": "private (IPv4-mapped)",
	} {
		_, err := Deliver(context.Background(), c, "http://"+ip+":8080/hook", []string{secret}, testMessage(t))
		mustForbidden(t, err, class)
	}
	if len(d.addrs) != 0 {
		t.Fatalf("dialed %v", d.addrs)
	}
}

func TestClientRefusesNameResolvingPrivate(t *testing.T) {
	for _, answer := range [][]string{
		{"10.1.2.3"},
		{"169.254.169.254"},
		{"::ffff:127.0.0.1"},
		{"93.184.216.34", "127.0.0.1"}, // a public address first, then a private one
		{"2606:4700::1111", "fd00:ec2::254"},
	} {
		d := &recordingDial{}
		r := &fakeResolver{answers: [][]string{answer}}
		c := NewClient(ClientOptions{dial: d.dial, Resolver: r})
		_, err := Deliver(context.Background(), c, "https://crm.example.com/hook", []string{NewSecret()}, testMessage(t))
		last := answer[len(answer)-1]
		ae := mustForbidden(t, err, Classify(netip.MustParseAddr(last)))
		if ae.Host != "crm.example.com" || ae.IP.String() != last {
			t.Fatalf("error names %q %s", ae.Host, ae.IP)
		}
		if !strings.Contains(err.Error(), "crm.example.com resolves to "+last) {
			t.Fatalf("error text %q", err)
		}
		if len(d.addrs) != 0 {
			t.Fatalf("answer %v: dialed %v", answer, d.addrs)
		}
	}
}

// TestClientDialsTheCheckedIP is DNS rebinding: the name answers a public
// address to the first lookup and loopback afterwards. The connection is
// made to the checked IP literal, never to the name (which a second
// lookup could turn private), and the next connection is checked anew.
func TestClientDialsTheCheckedIP(t *testing.T) {
	d := &recordingDial{}
	r := &fakeResolver{answers: [][]string{{"93.184.216.34"}, {"127.0.0.1"}}}
	c := NewClient(ClientOptions{dial: d.dial, Resolver: r})
	_, err := Deliver(context.Background(), c, "http://rebind.example.com:8080/hook", []string{NewSecret()}, testMessage(t))
	if !errors.Is(err, errNoNetwork) {
		t.Fatalf("first attempt: %v", err)
	}
	if len(d.addrs) != 1 || d.addrs[0] != "93.184.216.34:8080" || r.calls != 1 {
		t.Fatalf("dialed %v after %d lookups, want the checked IP once", d.addrs, r.calls)
	}
	if !Retryable(err) {
		t.Fatalf("a connection failure is not retryable: %v", err)
	}
	_, err = Deliver(context.Background(), c, "http://rebind.example.com:8080/hook", []string{NewSecret()}, testMessage(t))
	mustForbidden(t, err, "loopback")
	if len(d.addrs) != 1 {
		t.Fatalf("rebound name dialed: %v", d.addrs)
	}
}

func TestControlPeer(t *testing.T) {
	for addr, bad := range map[string]bool{
		"127.0.0.1:80": true, "[::ffff:10.0.0.1]:443": true, "[fe80::1%eth0]:80": true,
		"8.8.8.8:443": false, "[2606:4700::1111]:443": false,
	} {
		err := controlPeer("tcp", addr, nil)
		if bad != errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("controlPeer(%s) = %v", addr, err)
		}
	}
	if err := controlPeer("tcp", "not an address", nil); err == nil {
		t.Error("malformed address passes")
	}
}

func newReceiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDefaultClientRefusesLoopbackServer(t *testing.T) {
	srv, hits := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	u := strings.Replace(srv.URL, "http://", "http://alice:hunter2@", 1) + "/hook/s3cr3t-path?token=abc123"
	_, err := Deliver(context.Background(), NewClient(ClientOptions{}), u, []string{NewSecret()}, testMessage(t))
	mustForbidden(t, err, "loopback")
	if *hits != 0 {
		t.Fatal("the guarded client reached the loopback server")
	}
	for _, leak := range []string{"alice", "hunter2", "s3cr3t-path", "abc123"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error %q shows %q", err, leak)
		}
	}
	// A name that resolves to loopback, through the real resolver.
	_, err = Deliver(context.Background(), NewClient(ClientOptions{}), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), []string{NewSecret()}, testMessage(t))
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("localhost: %v", err)
	}
}

func TestAllowPrivateReachesLoopback(t *testing.T) {
	secret := NewSecret()
	srv, hits := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != UserAgent {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	st, err := Deliver(context.Background(), NewClient(ClientOptions{AllowPrivate: true}), srv.URL+"/hook", []string{secret}, testMessage(t))
	if err != nil || st != http.StatusOK || *hits != 1 {
		t.Fatalf("Deliver = %d, %v after %d hits", st, err, *hits)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	target, targetHits := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	srv, _ := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
	})
	st, err := Deliver(context.Background(), NewClient(ClientOptions{AllowPrivate: true}), srv.URL, []string{NewSecret()}, testMessage(t))
	var se *StatusError
	if st != http.StatusTemporaryRedirect || !errors.As(err, &se) || !Retryable(err) {
		t.Fatalf("Deliver = %d, %v", st, err)
	}
	if !strings.Contains(err.Error(), "redirects are not followed") {
		t.Fatalf("error %q", err)
	}
	if *targetHits != 0 {
		t.Fatal("redirect followed")
	}
}

func TestOnlyHTTPURLs(t *testing.T) {
	c := NewClient(ClientOptions{AllowPrivate: true})
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "gopher://h/", "http:///nohost", "//example.com/x", "example.com", "http://[::1", ""} {
		_, err := Deliver(context.Background(), c, u, []string{NewSecret()}, testMessage(t))
		if !errors.Is(err, ErrInvalidURL) || Retryable(err) {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestTimeoutIsBounded(t *testing.T) {
	srv, _ := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := NewClient(ClientOptions{AllowPrivate: true, Timeout: 200 * time.Millisecond})
	start := time.Now()
	st, err := Deliver(context.Background(), c, srv.URL, []string{NewSecret()}, testMessage(t))
	if err == nil || st != 0 || !Retryable(err) {
		t.Fatalf("Deliver = %d, %v", st, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("attempt took %v with a 200 ms timeout", d)
	}
}

// TestResponseBodyBounded: an endless answer does not hold the attempt;
// only the first bytes are read.
func TestResponseBodyBounded(t *testing.T) {
	srv, _ := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	c := NewClient(ClientOptions{AllowPrivate: true, Timeout: 10 * time.Second})
	start := time.Now()
	st, err := Deliver(context.Background(), c, srv.URL, []string{NewSecret()}, testMessage(t))
	if err != nil || st != http.StatusOK {
		t.Fatalf("Deliver = %d, %v", st, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("endless body held the attempt %v", d)
	}
}
