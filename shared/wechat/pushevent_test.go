package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	pushTestApp   = "gh_0a1b2c3d4e5f"
	pushTestUser  = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	pushTestTmplA = "Kq3mZ8x_OrderShipped-7fT2aLw9cVbN0pR4sD6eHjU"
	pushTestTmplB = "Vb5nQ1y_LeadAssigned-2hK8mXp3rTzW6uE9oGcFdSa"
)

// pushTestEvent returns an event of the testdata files.
func pushTestEvent(createTime int64, event string, items ...PushItem) PushEvent {
	return PushEvent{ToUserName: pushTestApp, FromUserName: pushTestUser, CreateTime: createTime,
		MsgType: "event", Event: event, Items: items}
}

func TestParsePushEventTestdata(t *testing.T) {
	popup := pushTestEvent(1732180800, EventSubscribePopup,
		PushItem{TemplateID: pushTestTmplA, SubscribeStatus: "accept", PopupScene: "0"},
		PushItem{TemplateID: pushTestTmplB, SubscribeStatus: "reject", PopupScene: "0"})
	change := pushTestEvent(1732184400, EventSubscribeChange,
		PushItem{TemplateID: pushTestTmplA, SubscribeStatus: "reject"})
	sent := pushTestEvent(1732188000, EventSubscribeSent,
		PushItem{TemplateID: pushTestTmplA, MsgID: "3395159288267931652", ErrorStatus: "success"})
	tests := []struct {
		file string
		want PushEvent
	}{
		{"push-popup-event.xml", popup},
		{"push-popup-event.json", popup},
		{"push-popup-event-single.json", pushTestEvent(1732180800, EventSubscribePopup,
			PushItem{TemplateID: pushTestTmplA, SubscribeStatus: "accept", PopupScene: "2"})},
		{"push-popup-event-wrapped.json", pushTestEvent(1732180800, EventSubscribePopup,
			PushItem{TemplateID: pushTestTmplA, SubscribeStatus: "accept", PopupScene: "1"})},
		{"push-change-event.xml", change},
		{"push-change-event.json", change},
		{"push-sent-event.xml", sent},
		{"push-sent-event.json", sent},
		{"push-sent-event-numbers.json", pushTestEvent(1732188000, EventSubscribeSent,
			PushItem{TemplateID: pushTestTmplA, MsgID: "3395159288267931652", ErrorStatus: "success"},
			PushItem{TemplateID: pushTestTmplB, MsgID: "3395159288267931653", ErrorCode: 10005,
				ErrorStatus: "fail:user refuse to accept the msg"})},
		{"push-text-message.xml", PushEvent{ToUserName: pushTestApp, FromUserName: pushTestUser,
			CreateTime: 1732191600, MsgType: "text"}},
		{"push-unknown-event.json", pushTestEvent(1732191600, "user_enter_tempsession")},
		{"push-compatible-sample.xml", PushEvent{ToUserName: "gh_10f6c3c3ac5a",
			FromUserName: "oyORnuP8q7ou2gfYjqLzSIWZf0rs", CreateTime: 1409735668, MsgType: "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParsePushEvent(pushTestRead(t, tt.file))
			if err != nil {
				t.Fatalf("ParsePushEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePushEventVariants(t *testing.T) {
	tests := []struct {
		name, body string
		want       PushEvent
	}{
		{"XMLBareList", `<xml><Event>subscribe_msg_change_event</Event><List><TemplateId>t</TemplateId>` +
			`<SubscribeStatusString>reject</SubscribeStatusString></List></xml>`,
			PushEvent{Event: EventSubscribeChange, Items: []PushItem{{TemplateID: "t", SubscribeStatus: "reject"}}}},
		{"XMLMsgIdSpelling", `<xml><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List>` +
			`<TemplateId>t</TemplateId><MsgId>9007199254740993</MsgId><ErrorCode>20001</ErrorCode>` +
			`</List></SubscribeMsgSentEvent></xml>`,
			PushEvent{Event: EventSubscribeSent, Items: []PushItem{{TemplateID: "t", MsgID: "9007199254740993",
				ErrorCode: 20001}}}},
		{"XMLOtherWrapperIgnored", `<xml><Event>subscribe_msg_popup_event</Event><SubscribeMsgSentEvent>` +
			`<List><TemplateId>t</TemplateId></List></SubscribeMsgSentEvent></xml>`,
			PushEvent{Event: EventSubscribePopup}},
		{"XMLDeclarationAndBOM", "\xef\xbb\xbf<?xml version=\"1.0\"?>\n<xml><CreateTime> 12 </CreateTime></xml>\n" +
			"<!-- trailing comment -->\n", PushEvent{CreateTime: 12}},
		{"XMLTrimmed", "<xml><Event>\n  subscribe_msg_change_event\n</Event><SubscribeMsgChangeEvent><List>" +
			"<TemplateId> t </TemplateId></List></SubscribeMsgChangeEvent></xml>",
			PushEvent{Event: EventSubscribeChange, Items: []PushItem{{TemplateID: "t"}}}},
		{"JSONWrapperObject", `{"Event":"subscribe_msg_change_event","SubscribeMsgChangeEvent":` +
			`{"List":{"TemplateId":"t","SubscribeStatusString":"reject"}}}`,
			PushEvent{Event: EventSubscribeChange, Items: []PushItem{{TemplateID: "t", SubscribeStatus: "reject"}}}},
		{"JSONWrapperItems", `{"Event":"subscribe_msg_change_event","SubscribeMsgChangeEvent":` +
			`[{"TemplateId":"t1"},{"TemplateId":"t2"}]}`,
			PushEvent{Event: EventSubscribeChange, Items: []PushItem{{TemplateID: "t1"}, {TemplateID: "t2"}}}},
		{"JSONListWins", `{"Event":"subscribe_msg_change_event","List":{"TemplateId":"a"},` +
			`"SubscribeMsgChangeEvent":{"List":{"TemplateId":"b"}}}`,
			PushEvent{Event: EventSubscribeChange, Items: []PushItem{{TemplateID: "a"}}}},
		{"JSONBigMsgID", `{"Event":"subscribe_msg_sent_event","List":{"TemplateId":"t","MsgID":18446744073709551615}}`,
			PushEvent{Event: EventSubscribeSent, Items: []PushItem{{TemplateID: "t", MsgID: "18446744073709551615"}}}},
		{"JSONNulls", `{"CreateTime":null,"Event":"subscribe_msg_sent_event","List":null}`,
			PushEvent{Event: EventSubscribeSent}},
		{"JSONEmptyList", `{"Event":"subscribe_msg_popup_event","List":[]}`, PushEvent{Event: EventSubscribePopup}},
		{"JSONNumbersAsStrings", `{"CreateTime":" 7 ","Event":"subscribe_msg_sent_event",` +
			`"List":{"TemplateId":"t","ErrorCode":"-1","PopupScene":"3"}}`,
			PushEvent{CreateTime: 7, Event: EventSubscribeSent, Items: []PushItem{{TemplateID: "t", ErrorCode: -1,
				PopupScene: "3"}}}},
		{"JSONUnknownEventIgnoresList", `{"Event":"other","List":"not even an object"}`, PushEvent{Event: "other"}},
		{"JSONEmptyObject", ` {} `, PushEvent{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePushEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePushEvent: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePushEventMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"Empty", ""},
		{"Blank", " \n\t"},
		{"Text", "success"},
		{"JSONArray", `[{"Event":"subscribe_msg_popup_event"}]`},
		{"JSONNull", "null"},
		{"JSONTruncated", `{"Event":"subscribe_msg_popup_event"`},
		{"JSONTrailing", `{"Event":"x"} {}`},
		{"JSONCreateTimeText", `{"CreateTime":"yesterday"}`},
		{"JSONCreateTimeFloat", `{"CreateTime":1.5}`},
		{"JSONCreateTimeBool", `{"CreateTime":true}`},
		{"JSONCreateTimeOverflow", `{"CreateTime":"99999999999999999999"}`},
		{"JSONStringAsNumber", `{"ToUserName":12}`},
		{"JSONListString", `{"Event":"subscribe_msg_popup_event","List":"t"}`},
		{"JSONListNumbers", `{"Event":"subscribe_msg_popup_event","List":[1]}`},
		{"JSONErrorCodeText", `{"Event":"subscribe_msg_sent_event","List":{"ErrorCode":"x"}}`},
		{"JSONErrorCodeObject", `{"Event":"subscribe_msg_sent_event","List":{"ErrorCode":{}}}`},
		{"JSONMsgIDArray", `{"Event":"subscribe_msg_sent_event","List":[{"MsgID":[1]}]}`},
		{"JSONWrapperBad", `{"Event":"subscribe_msg_sent_event","SubscribeMsgSentEvent":{"List":7}}`},
		{"JSONWrapperNotObject", `{"Event":"subscribe_msg_sent_event","SubscribeMsgSentEvent":"x"}`},
		{"XMLUnclosed", "<xml><Event>subscribe_msg_popup_event</Event>"},
		{"XMLMismatched", "<xml><Event>x</Evnt></xml>"},
		{"XMLTwoRoots", "<xml></xml><xml></xml>"},
		{"XMLTrailingText", "<xml></xml>success"},
		{"XMLCreateTimeText", "<xml><CreateTime>noon</CreateTime></xml>"},
		{"XMLErrorCodeText", "<xml><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List>" +
			"<ErrorCode>x</ErrorCode></List></SubscribeMsgSentEvent></xml>"},
		{"XMLBadEntity", "<xml><Event>&bogus;</Event></xml>"},
		{"XMLBadCharRef", "<xml><Event>&#0;</Event></xml>"},
		{"XMLNotUTF8Charset", `<?xml version="1.0" encoding="GBK"?><xml></xml>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePushEvent([]byte(tt.body))
			if !errors.Is(err, ErrBadPushBody) {
				t.Errorf("got %+v, %v; want ErrBadPushBody", got, err)
			}
		})
	}
}

func TestParsePushEnvelope(t *testing.T) {
	tests := []struct {
		name, body string
		want       PushEnvelope
	}{
		{"XML", "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>",
			PushEnvelope{ToUserName: "gh_1", Encrypt: "abc="}},
		{"XMLTrimmed", "<xml>\n <Encrypt>\n abc=\n </Encrypt>\n</xml>\n", PushEnvelope{Encrypt: "abc="}},
		{"JSON", `{"ToUserName":"gh_1","Encrypt":"abc="}`, PushEnvelope{ToUserName: "gh_1", Encrypt: "abc=", JSON: true}},
		{"CompatibleJSON", `{"ToUserName":"gh_1","FromUserName":"o","CreateTime":1,"Event":"x","Encrypt":"abc="}`,
			PushEnvelope{ToUserName: "gh_1", Encrypt: "abc=", JSON: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePushEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePushEnvelope: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("CompatibleSample", func(t *testing.T) {
		env := pushTestReadEnvelope(t, "push-compatible-sample.xml")
		if env.ToUserName != "gh_10f6c3c3ac5a" || env.JSON || !strings.HasPrefix(env.Encrypt, "hyzAe4Oz") {
			t.Errorf("got %+v, want the sample's ToUserName and Encrypt", env)
		}
	})
}

func TestParsePushEnvelopeMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"Empty", ""},
		{"Plaintext", "<xml><ToUserName>gh_1</ToUserName><Event>x</Event></xml>"},
		{"BlankEncrypt", "<xml><Encrypt> </Encrypt></xml>"},
		{"JSONNoEncrypt", `{"ToUserName":"gh_1"}`},
		{"JSONEncryptNumber", `{"Encrypt":12}`},
		{"JSONBroken", `{"Encrypt":"abc`},
		{"XMLBroken", `<xml><Encrypt>abc</xml>`},
		{"Neither", `Encrypt=abc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePushEnvelope([]byte(tt.body))
			if !errors.Is(err, ErrBadPushBody) {
				t.Errorf("got %+v, %v; want ErrBadPushBody", got, err)
			}
		})
	}
}

func TestMarshalPushEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   PushEvent
	}{
		{"PopupOne", pushTestEvent(1, EventSubscribePopup, PushItem{TemplateID: "t", SubscribeStatus: "accept",
			PopupScene: "0"})},
		{"PopupTwo", pushTestEvent(2, EventSubscribePopup, PushItem{TemplateID: "t1", SubscribeStatus: "accept"},
			PushItem{TemplateID: "t2", SubscribeStatus: "reject", PopupScene: "2"})},
		{"Change", pushTestEvent(3, EventSubscribeChange, PushItem{TemplateID: "t", SubscribeStatus: "reject"})},
		{"SentDelivered", pushTestEvent(4, EventSubscribeSent, PushItem{TemplateID: "t",
			MsgID: "3395159288267931652", ErrorStatus: "success"})},
		{"SentThree", pushTestEvent(5, EventSubscribeSent,
			PushItem{TemplateID: "t1", MsgID: "1", ErrorStatus: "success"},
			PushItem{TemplateID: "t2", MsgID: "18446744073709551615", ErrorCode: 10005, ErrorStatus: "fail:x"},
			PushItem{TemplateID: "t3", MsgID: "3", ErrorCode: -1})},
		{"NoItems", pushTestEvent(6, EventSubscribePopup)},
		{"UnknownEvent", pushTestEvent(7, "user_enter_tempsession")},
		{"Text", PushEvent{ToUserName: "gh", FromUserName: "o", CreateTime: 8, MsgType: "text"}},
		{"Awkward", pushTestEvent(-9, EventSubscribePopup, PushItem{TemplateID: "a]]>b<c>&d\"'",
			SubscribeStatus: "中文", PopupScene: "<1>", ErrorCode: 3})},
	}
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			name := tt.name + "/XML"
			if asJSON {
				name = tt.name + "/JSON"
			}
			t.Run(name, func(t *testing.T) {
				b, err := MarshalPushEvent(tt.ev, asJSON)
				if err != nil {
					t.Fatalf("MarshalPushEvent: %v", err)
				}
				got, err := ParsePushEvent(b)
				if err != nil {
					t.Fatalf("ParsePushEvent(%s): %v", b, err)
				}
				if !reflect.DeepEqual(got, tt.ev) {
					t.Errorf("got %+v, want %+v (body %s)", got, tt.ev, b)
				}
			})
		}
	}
}

func TestMarshalPushEventShape(t *testing.T) {
	one := pushTestEvent(1732180800, EventSubscribePopup,
		PushItem{TemplateID: pushTestTmplA, SubscribeStatus: "accept", PopupScene: "0"})
	two := one
	two.Items = append(two.Items, PushItem{TemplateID: pushTestTmplB, SubscribeStatus: "reject", PopupScene: "0"})
	sent := pushTestEvent(1, EventSubscribeSent, PushItem{TemplateID: "t", MsgID: "5", ErrorStatus: "success"})

	t.Run("JSONOneItemIsObject", func(t *testing.T) {
		if got := pushTestListKind(t, one); got != '{' {
			t.Errorf("List starts with %q, want an object", got)
		}
	})
	t.Run("JSONTwoItemsIsArray", func(t *testing.T) {
		if got := pushTestListKind(t, two); got != '[' {
			t.Errorf("List starts with %q, want an array", got)
		}
	})
	t.Run("JSONLikeTestdata", func(t *testing.T) {
		b, err := MarshalPushEvent(two, true)
		if err != nil {
			t.Fatal(err)
		}
		var got, want any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(pushTestRead(t, "push-popup-event.json"), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s, want the shape of push-popup-event.json", b)
		}
	})
	t.Run("JSONSentHasErrorCode", func(t *testing.T) {
		b, err := MarshalPushEvent(sent, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"ErrorCode":"0"`)) {
			t.Errorf("got %s, want ErrorCode \"0\"", b)
		}
	})
	t.Run("XML", func(t *testing.T) {
		b, err := MarshalPushEvent(two, false)
		if err != nil {
			t.Fatal(err)
		}
		want := `<xml><ToUserName><![CDATA[gh_0a1b2c3d4e5f]]></ToUserName>` +
			`<FromUserName><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></FromUserName>` +
			`<CreateTime>1732180800</CreateTime><MsgType><![CDATA[event]]></MsgType>` +
			`<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent>` +
			`<List><TemplateId><![CDATA[` + pushTestTmplA + `]]></TemplateId>` +
			`<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>0</PopupScene></List>` +
			`<List><TemplateId><![CDATA[` + pushTestTmplB + `]]></TemplateId>` +
			`<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>0</PopupScene></List>` +
			`</SubscribeMsgPopupEvent></xml>`
		if string(b) != want {
			t.Errorf("got  %s\nwant %s", b, want)
		}
	})
	t.Run("XMLSent", func(t *testing.T) {
		b, err := MarshalPushEvent(sent, false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`<SubscribeMsgSentEvent><List><TemplateId><![CDATA[t]]></TemplateId>`+
			`<MsgID>5</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List>`)) {
			t.Errorf("got %s, want a SubscribeMsgSentEvent with MsgID, ErrorCode 0 and ErrorStatus", b)
		}
	})
}

// pushTestListKind marshals ev as JSON and returns the first byte of its List.
func pushTestListKind(tb testing.TB, ev PushEvent) byte {
	tb.Helper()
	b, err := MarshalPushEvent(ev, true)
	if err != nil {
		tb.Fatal(err)
	}
	var v struct{ List json.RawMessage }
	if err := json.Unmarshal(b, &v); err != nil || len(v.List) == 0 {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return v.List[0]
}

func TestMarshalPushEventErrors(t *testing.T) {
	tests := []struct {
		name   string
		ev     PushEvent
		asJSON bool
	}{
		{"UnknownEventWithItems", PushEvent{Event: "other", Items: []PushItem{{TemplateID: "t"}}}, true},
		{"UnknownEventWithItemsXML", PushEvent{Event: "other", Items: []PushItem{{TemplateID: "t"}}}, false},
		{"XMLControlChar", PushEvent{FromUserName: "o\x00"}, false},
		{"XMLInvalidUTF8", PushEvent{Event: EventSubscribePopup, Items: []PushItem{{TemplateID: "\xff"}}}, false},
		{"XMLNonCharacter", PushEvent{Event: EventSubscribeSent, Items: []PushItem{{MsgID: "\ufffe"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := MarshalPushEvent(tt.ev, tt.asJSON); err == nil {
				t.Errorf("got %s, want an error", b)
			}
		})
	}
}

func TestMarshalPushEnvelope(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		b, err := MarshalPushEnvelope("gh_1", "a+b/c=", asJSON)
		if err != nil {
			t.Fatalf("MarshalPushEnvelope(json %v): %v", asJSON, err)
		}
		got, err := ParsePushEnvelope(b)
		want := PushEnvelope{ToUserName: "gh_1", Encrypt: "a+b/c=", JSON: asJSON}
		if err != nil || got != want {
			t.Errorf("ParsePushEnvelope(%s) = %+v, %v; want %+v", b, got, err, want)
		}
	}
	want := `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[a+b/c=]]></Encrypt></xml>`
	if b, _ := MarshalPushEnvelope("gh_1", "a+b/c=", false); string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if b, err := MarshalPushEnvelope("gh\x01", "x", false); err == nil {
		t.Errorf("got %s, want an error for a control character in XML", b)
	}
}

// pushTestRead returns the content of a testdata file.
func pushTestRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pushTestSeeds adds every push testdata file to a fuzz corpus.
func pushTestSeeds(f *testing.F) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "push-*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no push testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParsePushEvent(f *testing.F) {
	pushTestSeeds(f)
	for _, s := range []string{"", "{}", "<xml/>", `{"Event":"subscribe_msg_sent_event","List":[{"MsgID":1e400}]}`,
		"<xml><Event>subscribe_msg_popup_event</Event><List><TemplateId>]]&gt;</TemplateId></List></xml>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParsePushEvent(body)
		if err != nil {
			if !errors.Is(err, ErrBadPushBody) {
				t.Fatalf("got %v, want ErrBadPushBody", err)
			}
			return
		}
		_, asJSON, _ := pushDetect(body)
		b, err := MarshalPushEvent(ev, asJSON)
		if err != nil {
			t.Fatalf("MarshalPushEvent(%+v): %v", ev, err)
		}
		again, err := ParsePushEvent(b)
		if err != nil {
			t.Fatalf("ParsePushEvent(%q): %v", b, err)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip: got %+v, want %+v", again, ev)
		}
	})
}

func FuzzParsePushEnvelope(f *testing.F) {
	pushTestSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParsePushEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrBadPushBody) {
				t.Fatalf("got %v, want ErrBadPushBody", err)
			}
			return
		}
		b, err := MarshalPushEnvelope(env.ToUserName, env.Encrypt, env.JSON)
		if err != nil {
			t.Fatalf("MarshalPushEnvelope(%+v): %v", env, err)
		}
		if again, err := ParsePushEnvelope(b); err != nil || again != env {
			t.Fatalf("round trip: got %+v, %v; want %+v", again, err, env)
		}
	})
}
