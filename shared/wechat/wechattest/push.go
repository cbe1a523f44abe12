package wechattest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/wxnotify/wxnotify/shared/wechat"
)

// PushMode is the message push encryption mode of the mini program console.
type PushMode int

const (
	// Plaintext pushes the event as is, signed with signature.
	Plaintext PushMode = iota
	// Compatible pushes the plaintext fields and their encryption (Encrypt) in one body.
	Compatible
	// Safe pushes only {ToUserName, Encrypt}.
	Safe
)

func (m PushMode) String() string {
	switch m {
	case Plaintext:
		return "plaintext"
	case Compatible:
		return "compatible"
	case Safe:
		return "safe"
	}
	return "PushMode(" + strconv.Itoa(int(m)) + ")"
}

// PushConfig is the message push configuration of the mini program console, plus delivery knobs.
type PushConfig struct {
	URL            string // the server's push URL; an empty URL turns push off
	Token          string
	EncodingAESKey string // 43 characters; required in Compatible and Safe modes
	JSON           bool   // JSON bodies instead of XML
	Mode           PushMode
	// Client sends the pushes; a client without timeout when nil (Timeout bounds each attempt).
	Client *http.Client
	// Async delivers pushes in the background instead of before the user action returns; WaitPushes
	// waits for them.
	Async bool
	// Attempts is how many times an event is posted until the server answers 200 with "success" or an
	// empty body: 3 when zero (WeChat tries three times).
	Attempts int
	// Timeout is how long WeChat waits for each answer: 5 s when zero.
	Timeout time.Duration
	// RetryDelay is the pause between attempts; none when zero.
	RetryDelay time.Duration
}

// PushRecord is an event the fake pushed and how the server answered.
type PushRecord struct {
	Event     wechat.PushEvent
	Query     url.Values // the query string of the posts
	Body      []byte     // the posted body
	Attempts  []PushAttempt
	Delivered bool // an attempt was answered 200 with "success" or an empty body
}

// PushAttempt is one post of a pushed event.
type PushAttempt struct {
	StatusCode int    // 0 when no answer came
	Reply      string // the answer's body, up to 1 KiB
	Err        error  // the transport error, if any
}

// pusher is a validated PushConfig.
type pusher struct {
	cfg     PushConfig
	url     *url.URL
	crypter *wechat.Crypter
}

// SetPush sets (or, with an empty URL, clears) the message push configuration: from then on user
// actions and sends push their events to cfg.URL. It fails when cfg is invalid: a URL that is not
// absolute http(s), an empty Token, an invalid EncodingAESKey in Compatible or Safe mode, an unknown mode
// or negative knobs.
func (s *Server) SetPush(cfg PushConfig) error {
	if cfg.URL == "" {
		s.mu.Lock()
		s.push = nil
		s.mu.Unlock()
		return nil
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wechattest: push: invalid URL %q", cfg.URL)
	}
	if cfg.Token == "" {
		return errors.New("wechattest: push: empty token")
	}
	if cfg.Attempts < 0 || cfg.Timeout < 0 || cfg.RetryDelay < 0 {
		return errors.New("wechattest: push: negative attempts, timeout or retry delay")
	}
	p := &pusher{cfg: cfg, url: u}
	switch cfg.Mode {
	case Plaintext:
	case Compatible, Safe:
		if p.crypter, err = wechat.NewCrypter(s.appID, cfg.EncodingAESKey); err != nil {
			return fmt.Errorf("wechattest: push: %w", err)
		}
	default:
		return fmt.Errorf("wechattest: push: unknown mode %d", cfg.Mode)
	}
	if p.cfg.Client == nil {
		p.cfg.Client = &http.Client{}
	}
	if p.cfg.Attempts == 0 {
		p.cfg.Attempts = 3
	}
	if p.cfg.Timeout == 0 {
		p.cfg.Timeout = 5 * time.Second
	}
	s.mu.Lock()
	s.push = p
	s.mu.Unlock()
	return nil
}

// Pushes are the events pushed so far, in the order their delivery ended: with Retention, the most
// recent ones.
func (s *Server) Pushes() []PushRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PushRecord, len(s.pushes))
	for i, p := range s.pushes {
		p.Event.Items = append([]wechat.PushItem(nil), p.Event.Items...)
		p.Query = cloneValues(p.Query)
		p.Body = bytes.Clone(p.Body)
		p.Attempts = append([]PushAttempt(nil), p.Attempts...)
		out[i] = p
	}
	return out
}

// PushCounts are the number of pushes whose delivery ended and, of those, the number delivered, the
// records Retention dropped included.
func (s *Server) PushCounts() (ended, delivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushesEnded, s.pushesDelivered
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// WaitPushes waits until every push started so far has ended, the subscribe_msg_sent_event of every
// send already answered included.
func (s *Server) WaitPushes() {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for s.inFlight > 0 {
		s.pcond.Wait()
	}
}

// event is an event of openid at the fake's current time, with the common fields set.
func (s *Server) event(openid, name string) wechat.PushEvent {
	return wechat.PushEvent{ToUserName: s.originalID, FromUserName: openid, CreateTime: s.Now().Unix(), MsgType: "event", Event: name}
}

// emit pushes ev when push is set and the server is open: before returning, or in the background when
// the configuration is Async.
func (s *Server) emit(ev wechat.PushEvent) {
	if deliver := s.pushLater(ev); deliver != nil {
		deliver()
	}
}

// pushLater prepares the push of ev and returns the function that delivers it (in the background when
// the configuration is Async), or nil when push is off or the server closed. The push counts as in flight
// for WaitPushes from now on, so the function must be called.
func (s *Server) pushLater(ev wechat.PushEvent) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushLaterLocked(ev)
}

// pushLaterLocked is pushLater with s.mu held.
func (s *Server) pushLaterLocked(ev wechat.PushEvent) func() {
	p := s.push
	if p == nil {
		return nil
	}
	select {
	case <-s.closed:
		return nil
	default:
	}
	s.pmu.Lock()
	s.inFlight++
	s.pmu.Unlock()
	return func() {
		if p.cfg.Async {
			go s.deliver(p, ev)
			return
		}
		s.deliver(p, ev)
	}
}

// deliver posts ev until an attempt succeeds or the attempts run out, and records the outcome.
func (s *Server) deliver(p *pusher, ev wechat.PushEvent) {
	defer func() {
		s.pmu.Lock()
		s.inFlight--
		s.pcond.Broadcast()
		s.pmu.Unlock()
	}()
	rec := PushRecord{Event: ev}
	query, body, err := s.encode(p, ev)
	if err != nil {
		rec.Attempts = []PushAttempt{{Err: err}}
	} else {
		rec.Query, rec.Body = query, body
		for i := range p.cfg.Attempts {
			if i > 0 && p.cfg.RetryDelay > 0 && !s.pause(p.cfg.RetryDelay) {
				break
			}
			a := s.post(p, query, body)
			rec.Attempts = append(rec.Attempts, a)
			if a.Err == nil && a.StatusCode == http.StatusOK && (a.Reply == "" || a.Reply == "success") {
				rec.Delivered = true
				break
			}
		}
	}
	s.logger.LogAttrs(context.Background(), slog.LevelDebug, "wechattest: push",
		slog.String("event", ev.Event), slog.Int("attempts", len(rec.Attempts)), slog.Bool("delivered", rec.Delivered))
	s.mu.Lock()
	s.pushesEnded++
	if rec.Delivered {
		s.pushesDelivered++
	}
	if n := s.retention.Pushes; n > 0 && len(s.pushes) >= n {
		s.pushes = slices.Delete(s.pushes, 0, len(s.pushes)-n+1)
	}
	s.pushes = append(s.pushes, rec)
	s.mu.Unlock()
}

// pause waits d unless the server closes first; it reports whether d elapsed.
func (s *Server) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closed:
		return false
	}
}

// encode builds the query and body of ev as WeChat posts them in p's mode and format.
func (s *Server) encode(p *pusher, ev wechat.PushEvent) (url.Values, []byte, error) {
	plain, err := wechat.MarshalPushEvent(ev, p.cfg.JSON)
	if err != nil {
		return nil, nil, err
	}
	timestamp := strconv.FormatInt(s.Now().Unix(), 10)
	nonce := randomString(10, "0123456789")
	q := p.url.Query()
	q.Set("signature", wechat.Signature(p.cfg.Token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	if p.cfg.Mode == Plaintext {
		return q, plain, nil
	}
	enc, err := p.crypter.Encrypt(plain)
	if err != nil {
		return nil, nil, err
	}
	q.Set("openid", ev.FromUserName)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wechat.Signature(p.cfg.Token, timestamp, nonce, enc))
	if p.cfg.Mode == Safe {
		body, err := wechat.MarshalPushEnvelope(ev.ToUserName, enc, p.cfg.JSON)
		return q, body, err
	}
	body, err := withEncrypt(plain, enc, p.cfg.JSON)
	return q, body, err
}

// withEncrypt adds the Encrypt field to a plaintext event, as compatible mode posts it.
func withEncrypt(plain []byte, enc string, asJSON bool) ([]byte, error) {
	plain = bytes.TrimRight(plain, " \t\r\n")
	if asJSON {
		if !bytes.HasSuffix(plain, []byte("}")) {
			return nil, errors.New("wechattest: push: event is not a JSON object")
		}
		field, err := json.Marshal(enc)
		if err != nil {
			return nil, err
		}
		out := append(bytes.Clone(plain[:len(plain)-1]), `,"Encrypt":`...)
		return append(append(out, field...), '}'), nil
	}
	end := []byte("</xml>")
	if !bytes.HasSuffix(plain, end) {
		return nil, errors.New("wechattest: push: event is not an XML document")
	}
	out := append(bytes.Clone(plain[:len(plain)-len(end)]), "<Encrypt><![CDATA["+enc+"]]></Encrypt>"...)
	return append(out, end...), nil
}

// post makes one attempt to deliver body.
func (s *Server) post(p *pusher, query url.Values, body []byte) PushAttempt {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	u := *p.url
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return PushAttempt{Err: err}
	}
	if p.cfg.JSON {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "text/xml")
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return PushAttempt{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return PushAttempt{StatusCode: resp.StatusCode, Reply: string(bytes.TrimSpace(b)), Err: err}
}
