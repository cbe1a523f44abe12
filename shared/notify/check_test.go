package notify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// TestCheckFieldsAgreesWithCheck: CheckFields judges every field as Check
// does - it refuses exactly the data Check refuses, names Check's field
// among its refusals, and sends what Check sends - under both policies.
func TestCheckFieldsAgreesWithCheck(t *testing.T) {
	long := "深圳市前海国际供应链管理服务有限公司华南区分公司"
	kws := []notify.Keyword{{Name: "thing1"}, {Name: "time2"}, {Name: "phone_number3"}, {Name: "character_string4"}}
	cat, err := notify.NewCatalog([]notify.Template{
		{Alias: "rej", ID: "rej-id", Policy: notify.PolicyReject, Keywords: kws},
		{Alias: "cut", ID: "cut-id", Policy: notify.PolicyTruncate, Keywords: kws},
	})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"thing1": "某某科技有限公司", "time2": "15:01", "phone_number3": "+86-0766-66888866", "character_string4": "L-1001"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []map[string]string{
		good,
		with("thing1", long),
		with("thing1", "a\nb"),
		with("time2", "9:05"),
		with("time2", "25:00"),
		with("phone_number3", "0766-ABC"),
		with("character_string4", "A 1"),
		with("character_string4", "\x00delete"),
		with("thing9", "extra"),
		{"thing1": long, "time2": "x", "phone_number3": "abc"},
	}
	for _, alias := range []string{"rej", "cut"} {
		tmpl, _ := cat.Lookup(alias)
		for i, data := range cases {
			sent, checkErr := tmpl.Check(data)
			results := tmpl.CheckFields(data)
			var refused []string
			for _, r := range results {
				if r.OK() {
					if (checkErr == nil && sent[r.Keyword] != r.Send) || r.Truncated != (r.Send != r.Value) {
						t.Errorf("%s case %d %s: CheckFields sends %q (truncated %v), Check %q", alias, i, r.Field, r.Send, r.Truncated, sent[r.Keyword])
					}
					continue
				}
				if r.Code != notify.CodeBadRequest || r.Rule == "" || r.Send != "" {
					t.Errorf("%s case %d %s: a refusal without code or rule: %+v", alias, i, r.Field, r)
				}
				refused = append(refused, r.Field)
			}
			var e *notify.Error
			switch {
			case checkErr == nil && len(refused) > 0:
				t.Errorf("%s case %d: Check takes it, CheckFields refuses %v", alias, i, refused)
			case checkErr != nil && (!errors.As(checkErr, &e) || !strings.Contains(strings.Join(refused, ","), e.Field)):
				t.Errorf("%s case %d: Check refuses %v, CheckFields only %v", alias, i, checkErr, refused)
			}
		}
	}
	// The named results: the rule of each refusal, the truncated value.
	rej, _ := cat.Lookup("rej")
	bad := rej.CheckFields(map[string]string{"thing1": long, "time2": "9:05", "phone_number3": "0766-ABC", "character_string4": "L-1001"})
	for i, want := range []string{"thing value has 24 characters, limit 20", "time value ", "phone_number value must not contain letters", ""} {
		if !strings.HasPrefix(bad[i].Rule, want) || (want == "") != bad[i].OK() {
			t.Errorf("reject %s: got %q (ok %v), want a rule starting %q", bad[i].Field, bad[i].Rule, bad[i].OK(), want)
		}
	}
	cut, _ := cat.Lookup("cut")
	if r := cut.CheckFields(with("thing1", long))[0]; !r.OK() || !r.Truncated || r.Send != "深圳市前海国际供应链管理服务有限公司华…" {
		t.Errorf("truncate thing1: got %+v, want the value cut to 20 with …", r)
	}
}

// TestCheckSendSendsNothing: CheckSend judges the request's fields and its
// data, calls no WeChat API and takes no credit.
func TestCheckSendSendsNothing(t *testing.T) {
	r := newRig(t, nil)
	svc := r.service(t, r.st, notify.BatchOptions{})
	before := r.fake.Calls(wechattest.APISend) + r.fake.Calls(wechattest.APIToken) + r.fake.Calls(wechattest.APIStableToken)
	c, err := svc.CheckSend(notify.SendRequest{To: notify.Recipient{UserID: "u-1"}, Template: "lead_digest",
		Data: map[string]string{"thing1": "ok", "number2": "12"}})
	if err != nil || !c.OK() || c.Template.Alias != "lead_digest" || len(c.Fields) != 2 {
		t.Fatalf("good request: got %+v, %v; want OK", c, err)
	}
	c, err = svc.CheckSend(notify.SendRequest{To: notify.Recipient{UserID: "u-1"}, Template: "lead_digest", Page: "http://evil",
		Data: map[string]string{"thing1": "ok", "number2": "1a"}})
	var e *notify.Error
	if err != nil || c.OK() || !errors.As(c.Request, &e) || e.Field != "page" || c.Fields[1].OK() || !c.Fields[0].OK() {
		t.Errorf("bad page and number: got %+v, %v; want the page refused and number2 refused", c, err)
	}
	if _, err := svc.CheckSend(notify.SendRequest{To: notify.Recipient{UserID: "u-1"}, Template: "nope"}); notify.CodeOf(err) != notify.CodeBadRequest {
		t.Errorf("unknown template: got %v, want bad_request", err)
	}
	after := r.fake.Calls(wechattest.APISend) + r.fake.Calls(wechattest.APIToken) + r.fake.Calls(wechattest.APIStableToken)
	if after != before {
		t.Errorf("CheckSend called WeChat: %d calls, want %d", after, before)
	}
}
