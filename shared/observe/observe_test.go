package observe_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/observe"
	"github.com/wxnotify/wxnotify/shared/store"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/store/storeobs"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// line is one decoded JSON line.
type line map[string]any

func parseLines(t *testing.T, b []byte) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// emfMeta decodes a line's _aws member.
type emfMeta struct {
	Timestamp         int64
	CloudWatchMetrics []struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []struct{ Name, Unit string }
	}
}

func metaOf(t *testing.T, l line) emfMeta {
	t.Helper()
	raw, err := json.Marshal(l["_aws"])
	if err != nil {
		t.Fatal(err)
	}
	var m emfMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("_aws: %v", err)
	}
	return m
}

// checkEMF checks that every metric l's _aws names has its spec's unit and
// dimensions, that each dimension and each metric value is at top level,
// and returns the metric names.
func checkEMF(t *testing.T, l line) []string {
	t.Helper()
	m := metaOf(t, l)
	if m.Timestamp != t0.UnixMilli() {
		t.Errorf("Timestamp %d, want %d", m.Timestamp, t0.UnixMilli())
	}
	if len(m.CloudWatchMetrics) == 0 {
		t.Fatalf("no CloudWatchMetrics in %v", l)
	}
	var names []string
	for _, d := range m.CloudWatchMetrics {
		if d.Namespace != "wxnotify" {
			t.Errorf("Namespace %q", d.Namespace)
		}
		for _, mt := range d.Metrics {
			spec, ok := observe.SpecOf(mt.Name)
			if !ok {
				t.Fatalf("unknown metric %q", mt.Name)
			}
			if mt.Unit != spec.Unit {
				t.Errorf("%s: unit %q, want %q", mt.Name, mt.Unit, spec.Unit)
			}
			if len(d.Dimensions) != 1 || !slices.Equal(d.Dimensions[0], spec.Labels) {
				t.Errorf("%s: dimensions %v, want [%v]", mt.Name, d.Dimensions, spec.Labels)
			}
			if _, ok := l[mt.Name]; !ok {
				t.Errorf("%s: no value at top level", mt.Name)
			}
			names = append(names, mt.Name)
		}
		for _, dim := range d.Dimensions[0] {
			if v, ok := l[dim].(string); !ok || v == "" {
				t.Errorf("dimension %s: top-level value %v, want a non-empty string", dim, l[dim])
			}
		}
	}
	return names
}

// sums adds up the values of a counter in lines, or counts the
// observations of a histogram, by the given labels.
func sums(lines []line, metric string, labels ...string) map[string]float64 {
	spec, _ := observe.SpecOf(metric)
	out := map[string]float64{}
	for _, l := range lines {
		v, ok := l[metric]
		if !ok {
			continue
		}
		var key []string
		for _, lb := range labels {
			key = append(key, fmt.Sprint(l[lb]))
		}
		switch x := v.(type) {
		case float64:
			if spec.Kind == observe.Histogram {
				x = 1
			}
			out[strings.Join(key, ",")] += x
		case []any:
			out[strings.Join(key, ",")] += float64(len(x))
		}
	}
	return out
}

func TestEMFCountsEveryFact(t *testing.T) {
	var buf bytes.Buffer
	sink := observe.EMF(&buf)
	aliases := map[string]string{"TPL-LEAD": "lead_assigned"}
	ob := observe.New(sink, observe.Options{App: "sales", Now: fixedNow,
		TemplateAlias: func(id string) string { return aliases[id] }})
	const sent, skipped, wasted = 7, 3, 2
	for i := range sent {
		ob.NotificationDone(notify.Outcome{NotificationID: fmt.Sprintf("ntf_%d", i), Template: "lead_assigned",
			TemplateID: "TPL-LEAD", Status: notify.StatusSent, Duration: 120 * time.Millisecond})
	}
	for range skipped {
		ob.NotificationDone(notify.Outcome{Template: "lead_assigned", Status: notify.StatusSkipped, Reason: "no_consent"})
	}
	for range wasted {
		ob.NotificationDone(notify.Outcome{Template: "lead_assigned", Status: notify.StatusSkipped, Errcode: 43101, Wasted: true})
	}
	ob.CreditsChanged(notify.CreditChange{TemplateID: "TPL-LEAD", Kind: notify.CreditGranted, N: 3})
	ob.CreditsChanged(notify.CreditChange{TemplateID: "TPL-LEAD", Kind: notify.CreditGranted, N: 2})
	ob.CreditsChanged(notify.CreditChange{TemplateID: "TPL-OTHER", Kind: notify.CreditTaken, N: 1})
	ob.CreditsChanged(notify.CreditChange{TemplateID: "TPL-LEAD", Kind: notify.CreditZeroed, N: 0}) // moved nothing
	ob.PushApplied(notify.PushEvent{Event: "subscribe_msg_popup_event", Changed: true})
	ob.PushApplied(notify.PushEvent{Event: "subscribe_msg_popup_event", Changed: false})
	ob.PushApplied(notify.PushEvent{Event: "subscribe_msg_popup_event", Changed: false})
	ob.BatchProgress(notify.BatchStep{BatchID: "bat_1", Sent: 40, Failed: 2})
	ob.BatchProgress(notify.BatchStep{BatchID: "bat_1", Sent: 10, Skipped: 5, Done: true})
	ob.WeChatCall(wechat.APIStableToken, 0, nil, 30*time.Millisecond)

	lines := parseLines(t, buf.Bytes())
	if want := sent + skipped + wasted + 3 + 3 + 5 + 1; len(lines) != want {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), want, buf.String())
	}
	for _, l := range lines {
		checkEMF(t, l)
	}
	check := func(metric string, labels []string, want map[string]float64) {
		t.Helper()
		if got := sums(lines, metric, labels...); !mapsEqual(got, want) {
			t.Errorf("%s by %v: got %v, want %v", metric, labels, got, want)
		}
	}
	check(observe.Notifications, []string{"app", "template", "status", "errcode"}, map[string]float64{
		"sales,lead_assigned,sent,0": sent, "sales,lead_assigned,skipped,0": skipped, "sales,lead_assigned,skipped,43101": wasted})
	check(observe.WastedSends, []string{"app", "template"}, map[string]float64{"sales,lead_assigned": wasted})
	check(observe.Credits, []string{"app", "template", "kind"}, map[string]float64{
		"sales,lead_assigned,granted": 5, "sales,TPL-OTHER,taken": 1})
	check(observe.PushEvents, []string{"app", "event", "changed"}, map[string]float64{
		"sales,subscribe_msg_popup_event,true": 1, "sales,subscribe_msg_popup_event,false": 2})
	check(observe.BatchRecipients, []string{"app", "status"}, map[string]float64{
		"sales,sent": 50, "sales,failed": 2, "sales,skipped": 5})
	check(observe.BatchesFinished, []string{"app"}, map[string]float64{"sales": 1})
	check(observe.TokenFetches, []string{"app"}, map[string]float64{"sales": 1})
	check(observe.WeChatCallSeconds, []string{"api", "errcode"}, map[string]float64{wechat.APIStableToken + ",0": 1})

	first := lines[0]
	for k, want := range map[string]any{"msg": "notification", "level": "INFO", "id": "ntf_0", "durationMs": 120.0,
		"status": "sent", "templateId": "TPL-LEAD"} {
		if first[k] != want {
			t.Errorf("outcome line %s: got %v, want %v", k, first[k], want)
		}
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// The outcome line carries the people's identifiers as the domain hashed
// them, never raw.
func TestOutcomeLineHashesPeople(t *testing.T) {
	const openID, userID = "oRawOpenid_abcdefghijklmnop", "crm-user-4242"
	for name, mk := range map[string]func(*bytes.Buffer) observe.Sink{
		"EMF":   func(b *bytes.Buffer) observe.Sink { return observe.EMF(b) },
		"Lines": func(b *bytes.Buffer) observe.Sink { return observe.Lines(b) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			ob := observe.New(mk(&buf), observe.Options{App: "default", Now: fixedNow})
			ob.NotificationDone(notify.Outcome{NotificationID: "ntf_1", Template: "lead_assigned", Status: notify.StatusSent,
				OpenIDHash: notify.HashID(openID), UserIDHash: notify.HashID(userID)})
			out := buf.String()
			if strings.Contains(out, openID) || strings.Contains(out, userID) {
				t.Fatalf("a raw identifier in %s", out)
			}
			l := parseLines(t, buf.Bytes())[0]
			if l["openidHash"] != notify.HashID(openID) || l["userIdHash"] != notify.HashID(userID) {
				t.Fatalf("hashes: got %v %v", l["openidHash"], l["userIdHash"])
			}
			if _, emf := l["_aws"]; emf != (name == "EMF") {
				t.Fatalf("_aws present: %v", emf)
			}
		})
	}
}

// Store operations (and WeChat calls) are folded: one line per label set,
// its values an array, written before the next other line, at 100 values,
// or on Flush.
func TestStoreOpsAreFolded(t *testing.T) {
	var buf bytes.Buffer
	sink := observe.EMF(&buf)
	on := observe.StoreFunc(sink, "redis", fixedNow)
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	st := storeobs.New(b, on)
	ctx := t.Context()
	for i := range 3 {
		if _, err := st.Put(ctx, store.Key{Partition: "p", Sort: fmt.Sprint(i)}, []byte("v"), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Get(ctx, store.Key{Partition: "p", Sort: "missing"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("written before a flush: %s", buf.String())
	}
	observe.New(sink, observe.Options{App: "a", Now: fixedNow}).NotificationDone(notify.Outcome{Status: notify.StatusSent})
	lines := parseLines(t, buf.Bytes())
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want put, get and the outcome:\n%s", len(lines), buf.String())
	}
	if lines[2]["msg"] != "notification" {
		t.Fatalf("the outcome line is not last: %v", lines[2])
	}
	got := sums(lines, observe.StoreOpSeconds, "backend", "op", "result")
	if want := map[string]float64{"redis,put,ok": 3, "redis,get,not_found": 1}; !mapsEqual(got, want) {
		t.Fatalf("store ops: got %v, want %v", got, want)
	}
	for _, l := range lines[:2] {
		checkEMF(t, l)
	}
	// The outcome's own template label was empty: "none", never "".
	if lines[2]["template"] != "none" {
		t.Errorf("empty template label: got %v, want none", lines[2]["template"])
	}

	buf.Reset()
	for range 150 {
		on(storeobs.OpQuery, time.Millisecond, nil)
	}
	if lines = parseLines(t, buf.Bytes()); len(lines) != 1 || len(lines[0][observe.StoreOpSeconds].([]any)) != 100 {
		t.Fatalf("at 100 values: got %d lines: %s", len(lines), buf.String())
	}
	sink.Flush()
	lines = parseLines(t, buf.Bytes())
	if got := sums(lines, observe.StoreOpSeconds, "op"); got["query"] != 150 {
		t.Fatalf("after Flush: %v query values, want 150", got)
	}
}

func TestStoreResult(t *testing.T) {
	for err, want := range map[error]string{nil: "ok", store.ErrNotFound: "not_found",
		fmt.Errorf("put: %w", store.ErrConflict): "conflict", errors.New("timeout"): "error"} {
		if got := observe.StoreResult(err); got != want {
			t.Errorf("StoreResult(%v) = %q, want %q", err, got, want)
		}
	}
}

// A WeChat call without an answer has errcode "transport"; only
// stable_token counts as a token fetch.
func TestWeChatCalls(t *testing.T) {
	var buf bytes.Buffer
	sink := observe.Lines(&buf)
	ob := observe.New(sink, observe.Options{App: "x", Now: fixedNow})
	ob.WeChatCall("send", 0, nil, time.Millisecond)
	ob.WeChatCall("send", 43101, errors.New("43101"), time.Millisecond)
	ob.WeChatCall("send", 0, errors.New("dial tcp: refused"), time.Millisecond)
	ob.WeChatCall(wechat.APIStableToken, 0, nil, time.Millisecond)
	sink.Flush()
	lines := parseLines(t, buf.Bytes())
	got := sums(lines, observe.WeChatCallSeconds, "api", "errcode")
	if want := map[string]float64{"send,0": 1, "send,43101": 1, "send,transport": 1, wechat.APIStableToken + ",0": 1}; !mapsEqual(got, want) {
		t.Fatalf("calls: got %v, want %v", got, want)
	}
	if got := sums(lines, observe.TokenFetches, "app"); !mapsEqual(got, map[string]float64{"x": 1}) {
		t.Fatalf("token fetches: %v", got)
	}
	for _, l := range lines {
		if _, ok := l["_aws"]; ok {
			t.Fatalf("Lines wrote EMF metadata: %v", l)
		}
	}
}

// Every spec has a name, a unit CloudWatch knows and labels.
func TestSpecs(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range observe.Specs {
		if !strings.HasPrefix(s.Name, "wxnotify_") || seen[s.Name] || len(s.Labels) == 0 {
			t.Errorf("spec %+v", s)
		}
		seen[s.Name] = true
		if (s.Kind == observe.Counter) != (s.Unit == "Count") || (s.Kind == observe.Histogram) != (s.Unit == "Seconds") {
			t.Errorf("%s: kind %v, unit %s", s.Name, s.Kind, s.Unit)
		}
	}
	if len(seen) != 9 {
		t.Errorf("%d metrics, want 9", len(seen))
	}
}
