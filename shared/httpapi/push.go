package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

// checkPushQuery verifies the timestamp window of a signed push request: a
// signed request older (or newer) than MaxSkew is a replay.
func (a *API) checkPushQuery(push *PushConfig, timestamp string) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	d := a.now().Sub(time.Unix(ts, 0))
	return d <= push.MaxSkew && d >= -push.MaxSkew
}

// GET /wechat/push: the console's URL verification.
func (a *API) handlePushVerify(w http.ResponseWriter, r *http.Request) {
	if appOf(r).push == nil {
		writeError(w, r, notify.Errorf(notify.CodeNotFound, "message push is not configured"))
		return
	}
	q := r.URL.Query()
	if !appOf(r).push.signed(func(tok string) bool {
		return wechat.VerifySignature(tok, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"))
	}) {
		writeError(w, r, notify.Errorf(notify.CodeUnauthorized, "invalid signature"))
		return
	}
	if !a.checkPushQuery(appOf(r).push, q.Get("timestamp")) {
		writeError(w, r, notify.Errorf(notify.CodeUnauthorized, "timestamp outside the accepted window"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, q.Get("echostr"))
}

// POST /wechat/push: plaintext, compatible or safe mode; XML or JSON.
func (a *API) handlePush(w http.ResponseWriter, r *http.Request) {
	if appOf(r).push == nil {
		writeError(w, r, notify.Errorf(notify.CodeNotFound, "message push is not configured"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	timestamp, nonce := q.Get("timestamp"), q.Get("nonce")
	unauthorized := notify.Errorf(notify.CodeUnauthorized, "invalid push signature")
	plain := body
	delivery := notify.Delivery{ID: timestamp + "." + nonce}
	switch {
	case q.Get("encrypt_type") == "aes":
		if appOf(r).push.Crypter == nil {
			writeError(w, r, notify.Errorf(notify.CodeBadRequest, "safe-mode push received but no EncodingAESKey is configured"))
			return
		}
		// Compatible mode posts the plaintext fields beside Encrypt: only
		// the ciphertext, which msg_signature covers, is read.
		env, err := wechat.ParsePushEnvelope(body)
		if err != nil || env.Encrypt == "" {
			writeError(w, r, notify.Errorf(notify.CodeBadRequest, "malformed encrypted push body"))
			return
		}
		if !appOf(r).push.signed(func(tok string) bool {
			return wechat.VerifyMsgSignature(tok, q.Get("msg_signature"), timestamp, nonce, env.Encrypt)
		}) {
			writeError(w, r, unauthorized)
			return
		}
		if plain, err = appOf(r).push.Crypter.Decrypt(env.Encrypt); err != nil {
			// A valid signature over an undecryptable body: forged with a
			// leaked token, or a key mismatch. Either way, not ours.
			writeError(w, r, &notify.Error{Code: notify.CodeUnauthorized, Message: "cannot decrypt push", Err: err})
			return
		}
	case appOf(r).push.Crypter != nil:
		// The signature of a plaintext push does not cover its body: with
		// an EncodingAESKey configured, anyone who saw one push URL could
		// post any body under it. Only safe (or compatible) mode is taken.
		writeError(w, r, notify.Errorf(notify.CodeUnauthorized,
			"plaintext push refused: an EncodingAESKey is configured, so set the console's message encryption mode to safe"))
		return
	case !appOf(r).push.signed(func(tok string) bool { return wechat.VerifySignature(tok, q.Get("signature"), timestamp, nonce) }):
		writeError(w, r, unauthorized)
		return
	default:
		// Plaintext mode: the timestamp and nonce are bound to this body
		// (WeChat's redeliveries repeat both), so that a captured URL
		// cannot carry another body.
		sum := sha256.Sum256(body)
		delivery.Digest = hex.EncodeToString(sum[:16])
	}
	if !a.checkPushQuery(appOf(r).push, timestamp) {
		writeError(w, r, notify.Errorf(notify.CodeUnauthorized, "push timestamp outside the accepted window"))
		return
	}
	if ts, err := strconv.ParseInt(timestamp, 10, 64); err == nil {
		delivery.Until = time.Unix(ts, 0).Add(appOf(r).push.MaxSkew)
	}
	// Signed, but decoding would replace bytes that are not UTF-8 with
	// U+FFFD (JSON), and an openid is what keys a user's ledger: an event
	// WeChat cannot have sent is refused rather than applied to someone.
	if !utf8.Valid(plain) {
		writeError(w, r, notify.Errorf(notify.CodeBadRequest, "malformed push event: not UTF-8"))
		return
	}
	ev, err := wechat.ParsePushEvent(plain)
	if err != nil {
		writeError(w, r, &notify.Error{Code: notify.CodeBadRequest, Message: "malformed push event", Err: err})
		return
	}
	if ev.FromUserName != "" && !IsOpenID(ev.FromUserName) {
		writeError(w, r, notify.FieldError("FromUserName", "is not an openid"))
		return
	}
	noteOpenID(r, ev.FromUserName)
	// WeChat redelivers with the same timestamp and nonce: they tell a copy
	// from a second identical event.
	if err := svc(r).ApplyPushDelivery(r.Context(), ev, delivery); err != nil {
		// Not "success": WeChat delivers the push again (ErrPushInProgress
		// while a copy is being applied; a store failure otherwise).
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}
