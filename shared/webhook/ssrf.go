package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by every refusal of the SSRF guard.
var ErrForbiddenAddress = errors.New("webhook: forbidden address")

// AddressError names the address the guard refused and its class. It
// never holds the URL (which may carry credentials), only the host name
// and the IP.
type AddressError struct {
	Host  string     // the host name asked for ("" for an IP literal)
	IP    netip.Addr // the address refused
	Class string     // e.g. "loopback", "private", "metadata"
}

func (e *AddressError) Error() string {
	if e.Host != "" && e.Host != e.IP.String() {
		return fmt.Sprintf("webhook: forbidden address: %s resolves to %s, a %s address", e.Host, e.IP, e.Class)
	}
	return fmt.Sprintf("webhook: forbidden address: %s is a %s address", e.IP, e.Class)
}

// Unwrap makes errors.Is(err, ErrForbiddenAddress) hold.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// blocked is the refused address space, most specific first so the class
// named is the most telling one.
var blocked = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "metadata"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},   // IETF protocol assignments
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},  // benchmarking
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},    // incl. broadcast
	{netip.MustParsePrefix("::/96"), "reserved"},          // IPv4-compatible (deprecated)
	{netip.MustParsePrefix("100::/64"), "reserved"},       // discard-only
	{netip.MustParsePrefix("2001:db8::/32"), "reserved"},  // documentation
	{netip.MustParsePrefix("64:ff9b:1::/48"), "reserved"}, // local-use NAT64
}

// nat64 is the well-known NAT64 prefix: its last 32 bits are an IPv4
// address, which is checked like one.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Classify returns the class of a forbidden address ("loopback",
// "private", ...) or "" if the address may be dialed. IPv4-mapped
// (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms are judged by the
// IPv4 address they carry, with " (IPv4-mapped)" or " (NAT64)" added.
func Classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		if c := Classify(ip.Unmap()); c != "" {
			return c + " (IPv4-mapped)"
		}
		return ""
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		if c := Classify(netip.AddrFrom4([4]byte(b[12:]))); c != "" {
			return c + " (NAT64)"
		}
		return ""
	}
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return b.class
		}
	}
	return ""
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ClientOptions configure NewClient. The zero value is the production
// setting.
type ClientOptions struct {
	// AllowPrivate turns the address checks off, for `wxnotify dev` and
	// tests against a loopback receiver. Never set it in production.
	AllowPrivate bool
	// Timeout bounds a whole attempt: connect, TLS, request, response
	// headers and the (bounded) body read. Default 15 s.
	Timeout time.Duration
	// Resolver resolves host names; default net.DefaultResolver.
	Resolver Resolver

	// dial replaces the network dial of an already checked IP, in tests.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client limits.
const (
	defaultTimeout     = 15 * time.Second
	connectTimeout     = 5 * time.Second
	maxResponseHeaders = 16 << 10
)

// NewClient returns an HTTP client for webhook deliveries. Unless
// AllowPrivate is set it only connects to public addresses: a host name
// is resolved once, every address of the answer is checked (one forbidden
// address refuses the host) and the connection is made to a checked IP
// literal, so a DNS answer that changes between check and dial (DNS
// rebinding) cannot reach a private network. The socket's peer is checked
// again just before connecting. Proxies from the environment are ignored
// (a proxy would hide the real destination) and redirects are never
// followed: a 3xx is the attempt's answer.
func NewClient(opts ClientOptions) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	g := &guard{opts: opts}
	g.dialer = &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	if !opts.AllowPrivate {
		g.dialer.Control = controlPeer
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    connectTimeout,
		ResponseHeaderTimeout:  opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaders,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// guard is the checking dialer behind NewClient.
type guard struct {
	opts   ClientOptions
	dialer *net.Dialer
}

// dialContext resolves addr's host once, checks every address and dials
// the checked IPs in turn.
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("webhook: dial: %w", err)
	}
	ips, err := g.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, ip := range ips {
		conn, err := g.dial(ctx, network, ip.String(), port)
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// resolve returns the checked addresses of host (an IP literal or a name).
func (g *guard) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var ips []netip.Addr
	literal := false
	if ip, err := netip.ParseAddr(host); err == nil {
		ips, literal = []netip.Addr{ip}, true
	} else {
		ipNet := map[string]string{"tcp4": "ip4", "tcp6": "ip6"}[network]
		if ipNet == "" {
			ipNet = "ip"
		}
		if ips, err = g.opts.Resolver.LookupNetIP(ctx, ipNet, host); err != nil {
			return nil, fmt.Errorf("webhook: resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("webhook: resolve %s: no address", host)
		}
	}
	if g.opts.AllowPrivate {
		return ips, nil
	}
	for _, ip := range ips {
		if c := Classify(ip); c != "" {
			e := &AddressError{IP: ip.WithZone(""), Class: c}
			if !literal {
				e.Host = host
			}
			return nil, e
		}
	}
	return ips, nil
}

// dial connects to one checked IP.
func (g *guard) dial(ctx context.Context, network, ip, port string) (net.Conn, error) {
	addr := net.JoinHostPort(ip, port)
	if g.opts.dial != nil {
		return g.opts.dial(ctx, network, addr)
	}
	return g.dialer.DialContext(ctx, network, addr)
}

// controlPeer is the last check, on the address the socket is about to
// connect to.
func controlPeer(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %q: %w", address, err)
	}
	if c := Classify(ap.Addr()); c != "" {
		return &AddressError{IP: ap.Addr().WithZone(""), Class: c}
	}
	return nil
}
