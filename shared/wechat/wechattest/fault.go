package wechattest

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Drop says when a faulty call loses its connection.
type Drop int

const (
	// NoDrop answers normally.
	NoDrop Drop = iota
	// DropBeforeRead closes the connection before the request is read: nothing happens.
	DropBeforeRead
	// DropAfterRead processes the request fully (a send IS delivered, a token IS issued) and then closes
	// the connection without an answer: the ambiguous outcome a client must handle.
	DropAfterRead
)

// Fault makes the next Count calls of API misbehave. Faults of the same API apply one after the other,
// in the order they were injected.
type Fault struct {
	API string // one of the API* names
	// Count is how many calls the fault affects; every call until ClearFaults when zero.
	Count int
	// Latency delays the call before anything else happens.
	Latency time.Duration
	// Drop closes the connection (see Drop); it takes precedence over HTTPStatus and Errcode.
	Drop Drop
	// HTTPStatus answers this status with a plain text body instead of processing the call, as a proxy in
	// front of WeChat would; it takes precedence over Errcode.
	HTTPStatus int
	// Errcode answers this WeChat error code (with WeChat's usual message) instead of processing the call.
	Errcode int
}

// fault is an injected Fault and the calls it has left.
type fault struct {
	Fault
	left int // 0: unlimited
}

var apis = []string{APIToken, APIStableToken, APICode2Session, APISend, APIGetTemplate, APIGetCategory,
	APIGetPubTemplateTitles, APIGetPubTemplateKeywords, APIAddTemplate, APIDelTemplate}

// Inject adds f. It fails when f.API is unknown, f.Count or f.Latency is negative, f.Drop or f.HTTPStatus
// is out of range, or f does nothing at all.
func (s *Server) Inject(f Fault) error {
	switch {
	case !slices.Contains(apis, f.API):
		return fmt.Errorf("wechattest: fault: unknown api %q", f.API)
	case f.Count < 0:
		return errors.New("wechattest: fault: negative count")
	case f.Latency < 0:
		return errors.New("wechattest: fault: negative latency")
	case f.Drop < NoDrop || f.Drop > DropAfterRead:
		return fmt.Errorf("wechattest: fault: invalid drop %d", f.Drop)
	case f.HTTPStatus != 0 && (f.HTTPStatus < 100 || f.HTTPStatus > 599):
		return fmt.Errorf("wechattest: fault: invalid HTTP status %d", f.HTTPStatus)
	case f.Latency == 0 && f.Drop == NoDrop && f.HTTPStatus == 0 && f.Errcode == 0:
		return errors.New("wechattest: fault: no latency, drop, HTTP status or errcode")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: f.Count})
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// hit counts a call of api and takes the fault that applies to it, if any.
func (s *Server) hit(api string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[api]++
	for i, f := range s.faults {
		if f.API != api {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f.Fault
	}
	return Fault{}
}
