package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/notify"
	"github.com/wxnotify/wxnotify/shared/wechat"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// The app's templates on the fake WeChat of the sync tests: the lead
// template of testdata/sync-before.yaml, and two the file lacks.
var (
	syncLead = wechattest.Template{PriTmplID: leadID, Title: "线索分配通知", Type: wechattest.OneTime, Keywords: []wechattest.Keyword{
		{Name: "thing1", Label: "客户名称"}, {Name: "character_string2", Label: "线索编号"},
		{Name: "time3", Label: "分配时间"}, {Name: "thing4", Label: "线索来源"},
	}}
	syncDigest = wechattest.Template{PriTmplID: "Bq2ZhXK0m4Yt8c9XkQfJ7uV3sLwN5aPdRbEeGiHjTk0", Title: "线索日报", Type: wechattest.OneTime,
		Keywords: []wechattest.Keyword{{Name: "thing1", Label: "日报名称"}, {Name: "number2", Label: "新增线索"}}}
	syncStatus = wechattest.Template{PriTmplID: "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME", Title: "Service Status", Type: wechattest.LongTerm,
		Keywords: []wechattest.Keyword{{Name: "enum_string1", Label: "服务状态", Enum: []string{"已中断", "已恢复"}}, {Name: "time2", Label: "更新时间"}}}
)

// syncWeChat starts a fake WeChat with templates and returns the
// environment that points sync at it.
func syncWeChat(tb testing.TB, templates ...wechattest.Template) (*wechattest.Server, map[string]string) {
	tb.Helper()
	fake := wechattest.NewServer(wechattest.Options{Templates: templates})
	tb.Cleanup(fake.Close)
	return fake, map[string]string{"WXN_WECHAT_APPID": fake.AppID(), "WXN_WECHAT_SECRET": fake.Secret(), "WXN_WECHAT_API_BASE": fake.URL()}
}

// copyTestdata copies testdata/name to a temporary file and returns its path.
func copyTestdata(tb testing.TB, name string) string {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "wxnotify.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func readFile(tb testing.TB, path string) string {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(raw)
}

func TestTemplatesSync(t *testing.T) {
	fake, env := syncWeChat(t, syncLead, syncDigest, syncStatus)
	path := copyTestdata(t, "sync-before.yaml")
	before := readFile(t, path)
	want := readFile(t, filepath.Join("testdata", "sync-after.yaml"))

	t.Run("DryRun", func(t *testing.T) {
		got := cliRun(t, env, "", "templates", "sync", "--config", path, "--dry-run")
		if got.code != exitOK {
			t.Fatalf("got exit %d, stderr %q", got.code, got.stderr)
		}
		if after := readFile(t, path); after != before {
			t.Fatalf("--dry-run changed the file:\n%s", after)
		}
		wantDiff := unifiedDiff(path, path+" (synced)", before, want)
		wantReport := "would be added: tmpl_bq2zhxk0, service_status\nwould be updated: lead_assigned\n" +
			"would be flagged removed (no longer on WeChat): old_promo\n"
		if got.stdout != wantDiff+wantReport {
			t.Fatalf("got:\n%s\nwant:\n%s%s", got.stdout, wantDiff, wantReport)
		}
		for _, line := range []string{"+    title: 线索分配通知", "+    removed: true", "+        enum: [已中断, 已恢复]"} {
			if !strings.Contains(got.stdout, "\n"+line+"\n") {
				t.Fatalf("diff without %q:\n%s", line, got.stdout)
			}
		}
	})

	t.Run("Write", func(t *testing.T) {
		got := cliRun(t, env, "", "templates", "sync", "--config", path)
		if got.code != exitOK || !strings.HasSuffix(got.stdout, "wrote "+path+"\n") {
			t.Fatalf("got exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
		}
		after := readFile(t, path)
		if after != want {
			t.Fatalf("got:\n%s\nwant testdata/sync-after.yaml:\n%s\ndiff:\n%s", after, want, unifiedDiff("want", "got", want, after))
		}
		// Rules and comments came through as written.
		rules := before[strings.Index(before, "# Rules keep"):]
		if !strings.HasSuffix(after, rules) {
			t.Fatalf("rules section changed:\n%s", after)
		}
		f, err := config.ParseFile([]byte(after))
		if err != nil {
			t.Fatalf("the synced file does not load: %v", err)
		}
		cat, err := f.Catalog()
		if err != nil {
			t.Fatal(err)
		}
		lead, _ := cat.Lookup("lead_assigned")
		status, _ := cat.Lookup("service_status")
		if _, ok := cat.Lookup("old_promo"); ok || lead.Policy != notify.PolicyTruncate || lead.Keywords[0].Label != "客户名称" ||
			status.Kind != notify.LongTerm || len(status.Keywords[0].Enum) != 2 {
			t.Fatalf("catalog: got lead %+v, status %+v; want old_promo left out", lead, status)
		}
		if n := fake.Calls(wechattest.APIGetTemplate); n != 2 {
			t.Fatalf("gettemplate calls: got %d, want 2 (dry run and sync)", n)
		}
	})

	t.Run("UpToDate", func(t *testing.T) {
		got := cliRun(t, env, "", "templates", "sync", "--config", path)
		if got.code != exitOK || got.stdout != path+" is up to date with WeChat's 3 templates\n" || readFile(t, path) != want {
			t.Fatalf("second sync: got exit %d, stdout %q", got.code, got.stdout)
		}
	})

	t.Run("RuleOfRemovedTemplate", func(t *testing.T) {
		// The lead template is deleted in the console too: its rule would
		// break the file, so nothing is written.
		_, env := syncWeChat(t, syncDigest, syncStatus)
		got := cliRun(t, env, "", "templates", "sync", "--config", path)
		if got.code != exitFailure || !strings.Contains(got.stderr, "the synced file would not load: ") ||
			!strings.Contains(got.stderr, "lead-assigned") {
			t.Fatalf("got exit %d, stderr %q; want 1 naming the rule", got.code, got.stderr)
		}
		if readFile(t, path) != want {
			t.Fatal("a failed sync changed the file")
		}
		got = cliRun(t, env, "", "templates", "sync", "--config", path, "--dry-run")
		if got.code != exitFailure || !strings.Contains(got.stdout, "\n+    removed: true\n") || readFile(t, path) != want {
			t.Fatalf("dry run: got exit %d, stdout %q; want 1 and the diff that flags lead_assigned", got.code, got.stdout)
		}
	})
}

func TestTemplatesSyncNewFile(t *testing.T) {
	_, env := syncWeChat(t, syncStatus, syncLead)
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	env["WXN_CONFIG"] = path
	got := cliRun(t, env, "", "templates", "sync")
	if got.code != exitOK {
		t.Fatalf("got exit %d, stderr %q", got.code, got.stderr)
	}
	f, err := config.ParseFile([]byte(readFile(t, path)))
	if err != nil {
		t.Fatalf("the new file does not load: %v", err)
	}
	if len(f.Templates) != 2 || f.Templates[0].Alias != "service_status" || f.Templates[1].Alias != "tmpl_mujuj6qn" {
		t.Fatalf("got templates %+v", f.Templates)
	}
}

func TestTemplatesSyncWeChatError(t *testing.T) {
	fake, env := syncWeChat(t, syncLead)
	if err := fake.Inject(wechattest.Fault{API: wechattest.APIGetTemplate, Errcode: 48001, Count: 1}); err != nil {
		t.Fatal(err)
	}
	path := copyTestdata(t, "sync-before.yaml")
	got := cliRun(t, env, "", "templates", "sync", "--config", path)
	if got.code != exitFailure || !strings.Contains(got.stderr, "48001") || strings.Contains(got.stderr, "usage:") {
		t.Fatalf("got exit %d, stderr %q; want 1 with WeChat's errcode", got.code, got.stderr)
	}
}

func TestDeriveAlias(t *testing.T) {
	used := map[string]bool{"order_shipped": true, "tmpl_bq2zhxk0": true, "tmpl_bq2zhxk0_2": true}
	tests := []struct {
		name, title, id, want string
	}{
		{"ASCIITitle", "Lead Assigned", "x", "lead_assigned"},
		{"MixedTitle", "VIP到期提醒 (2)", "x", "vip_2"},
		{"Taken", "Order  Shipped!", "x", "order_shipped_2"},
		{"ChineseTitle", "线索分配通知", "muj-uJ6qNrFpdYZgnSCT5fTWvI9XTV2n3sdwUBRSCR4", "tmpl_mujuj6qn"},
		{"ChineseTitleTakenTwice", "线索日报", "Bq2ZhXK0m4Yt8c9XkQfJ7uV3sLwN5aPdRbEeGiHjTk0", "tmpl_bq2zhxk0_3"},
		{"DigitsOnlyTitle", "2026", "ab-cd", "tmpl_abcd"},
		{"NothingASCII", "通知", "--", "tmpl"},
		{"LongTitle", strings.Repeat("abcdefghij ", 6), "x", "abcdefghij_abcdefghij_abcdefghij_abcdefg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := deriveAlias(tc.title, tc.id, used); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSyncTemplatesFile(t *testing.T) {
	lead := wechat.Template{PriTmplID: "t1", Title: "Lead", Type: wechat.TemplateOneTime,
		Keywords: []wechat.TemplateKeyword{{Name: "thing1", Type: "thing", Label: "名称"}}}
	tests := []struct {
		name    string
		in      string
		remote  []wechat.Template
		want    string
		wantErr string
	}{
		{"Empty", "", []wechat.Template{lead},
			"templates:\n  - alias: lead\n    id: t1\n    title: Lead\n    kind: one-time\n    policy: reject\n    keywords:\n      - name: thing1\n        type: thing\n        label: 名称\n", ""},
		{"CommentsOnly", "# mine\n", []wechat.Template{lead},
			"# mine\ntemplates:\n  - alias: lead\n    id: t1\n    title: Lead\n    kind: one-time\n    policy: reject\n    keywords:\n      - name: thing1\n        type: thing\n        label: 名称\n", ""},
		{"NullTemplates", "templates: # soon\n", []wechat.Template{lead},
			"templates: # soon\n  - alias: lead\n    id: t1\n    title: Lead\n    kind: one-time\n    policy: reject\n    keywords:\n      - name: thing1\n        type: thing\n        label: 名称\n", ""},
		{"RestoredAndQuotingKept", "templates:\n  - alias: x\n    id: t1\n    title: 'Old'\n    removed: true\n    keywords: []\n", []wechat.Template{lead},
			"templates:\n  - alias: x\n    id: t1\n    title: 'Lead'\n    kind: one-time\n    keywords:\n      - name: thing1\n        type: thing\n        label: 名称\n", ""},
		{"EmptyMapping", "{}\n", []wechat.Template{lead},
			"templates:\n  - alias: lead\n    id: t1\n    title: Lead\n    kind: one-time\n    policy: reject\n    keywords:\n      - name: thing1\n        type: thing\n        label: 名称\n", ""},
		{"NotAMapping", "- a\n", nil, "", "the top level must be a mapping"},
		{"TemplatesNotAList", "templates: 3\n", nil, "", "templates: line 1: must be a list"},
		{"TemplateNotAMapping", "templates:\n  - x\n", nil, "", "templates[0]: line 2: must be a mapping"},
		{"InvalidYAML", "templates: [\n", nil, "", "invalid yaml"},
		{"UnknownType", "", []wechat.Template{{PriTmplID: "t9", Title: "T", Type: 7, Keywords: lead.Keywords}}, "", "has type 7"},
		{"UnknownKey", "templatez: []\n", nil, "", "the synced file would not load"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := syncTemplates([]byte(tc.in), tc.remote)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func FuzzSyncTemplates(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "sync-before.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(config.Example)
	f.Add([]byte("templates:\n  - alias: a\n    id: x\n    keywords: [{name: thing1}]\n"))
	remote := []wechat.Template{{PriTmplID: leadID, Title: "线索分配通知", Type: wechat.TemplateOneTime, Keywords: []wechat.TemplateKeyword{
		{Name: "thing1", Type: "thing", Label: "客户名称"}, {Name: "character_string2", Type: "character_string"},
		{Name: "time3", Type: "time"}, {Name: "thing4", Type: "thing"}}}}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := syncTemplates(in, remote)
		if err != nil {
			return
		}
		if _, err := config.ParseFile(out); err != nil {
			t.Fatalf("synced output does not load: %v", err)
		}
		again, rep, err := syncTemplates(out, remote)
		if err != nil || rep.changed() || !bytes.Equal(again, out) {
			t.Fatalf("a second sync changed the output (%v, %+v):\n%s\n---\n%s", err, rep, out, again)
		}
	})
}

// TestTemplatesSyncFromDevSandbox runs `templates sync --sandbox` against a
// running `wxnotify dev`: the file it writes holds the dev server's catalog
// (ids, titles, kinds, keywords with their labels and enum values) read
// through the sandbox WeChat's template API, and loads; a second sync
// changes nothing.
func TestTemplatesSyncFromDevSandbox(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	got := cliRun(t, map[string]string{"WXN_URL": e.url}, "", "templates", "sync", "--sandbox", "--config", path)
	if got.code != exitOK || !strings.Contains(got.stdout, "wrote "+path) {
		t.Fatalf("templates sync --sandbox: got exit %d, stdout %q, stderr %q; want 0 and the file written", got.code, got.stdout, got.stderr)
	}
	f, err := config.ParseFile([]byte(readFile(t, path)))
	if err != nil {
		t.Fatalf("the synced file does not load: %v", err)
	}
	catalog := e.srv.parts.Service.Catalog().Templates()
	if len(catalog) == 0 || len(f.Templates) != len(catalog) {
		t.Fatalf("synced %d templates, the dev server has %d", len(f.Templates), len(catalog))
	}
	for i, want := range catalog {
		g := f.Templates[i]
		if g.ID != want.ID || g.Title != want.Title || notify.Kind(g.Kind) != want.Kind || len(g.Keywords) != len(want.Keywords) {
			t.Fatalf("synced template %d: got %+v, want %+v", i, g, want)
		}
		for j, kw := range want.Keywords {
			gk := g.Keywords[j]
			if gk.Name != kw.Name || gk.Label != kw.Label || strings.Join(gk.Enum, "|") != strings.Join(kw.Enum, "|") {
				t.Fatalf("template %s keyword %d: got %+v, want %+v", want.ID, j, gk, kw)
			}
		}
	}
	again := cliRun(t, map[string]string{"WXN_URL": e.url}, "", "templates", "sync", "--sandbox", "--config", path)
	if again.code != exitOK || !strings.Contains(again.stdout, "is up to date") {
		t.Fatalf("second sync: got exit %d, stdout %q, stderr %q; want it up to date", again.code, again.stdout, again.stderr)
	}
}

// TestTemplatesSyncSandboxErrors: --sandbox against a server that is not
// wxnotify dev, or nothing at all, says what to do and writes nothing; --url
// without --sandbox is a usage error.
func TestTemplatesSyncSandboxErrors(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	path := filepath.Join(t.TempDir(), "wxnotify.yaml")
	for _, tc := range []struct {
		name, url, want string
	}{
		{"NotDev", other.URL, "runs no sandbox WeChat"},
		{"NothingThere", closed.URL, "start it with wxnotify dev, or give its address with --url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cliRun(t, nil, "", "templates", "sync", "--sandbox", "--url", tc.url, "--config", path)
			if got.code != exitFailure || !strings.Contains(got.stderr, tc.want) {
				t.Fatalf("got exit %d, stderr %q; want 1 and %q", got.code, got.stderr, tc.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("%s was written: %v", path, err)
			}
		})
	}
	got := cliRun(t, nil, "", "templates", "sync", "--url", other.URL)
	if got.code != exitUsage || !strings.Contains(got.stderr, "--url is for --sandbox") {
		t.Fatalf("--url without --sandbox: got exit %d, stderr %q; want a usage error", got.code, got.stderr)
	}
}
