// Package notify is wxnotify's domain: users and their bindings to the
// customer's own account ids, mini-program sessions, the consent ledger of
// subscribe-message credits, notifications with idempotency, and the
// template catalog that validates data before anything reaches WeChat.
//
// It knows no transport (HTTP, Lambda, SCF) and no store backend: it talks to
// the store contract (package store) and to WeChat through the small
// interfaces declared here, which *wechat.Client satisfies.
//
// Store layout (one app per partition prefix "<appid>"):
//
//	u|<appid>|<openid>   profile              the user (openid, unionid, bound userId, logins)
//	u|<appid>|<openid>   c|<tmplId>|n         one-time credits (a counter)
//	u|<appid>|<openid>   c|<tmplId>|m         consent state (status, alwaysKeep, long-term acceptance,
//	                                          the push items and reports applied: their done marks)
//	u|<appid>|<openid>   p|<tmplId>           pairing balance of client reports and WeChat popup events
//	u|<appid>|<openid>   unk|<tmplId>         notifications awaiting a subscribe_msg_sent_event
//	u|<appid>|<openid>   tl|<time>|<ref>      the user's timeline: one event each (see timeline.go)
//	b|<appid>|<userId>   openid               the binding userId -> openid
//	n|<appid>|<id>       n                    a notification record (its id is derived from the
//	                                          idempotency key when there is one: the claim IS the record)
//	push|<appid>         <event key>          sent-event items without a msgid already applied
//	aud|<appid>|<tmplId> <openid>!<nonce>     the template's audience index: users who may receive it now
//	                                          (see audience.go; "<openid>" alone: written before pruning)
package notify
