package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

const templatesUsage = `usage: wxnotify templates <subcommand> [flags]

subcommands:
  sync   update wxnotify.yaml's templates from the app's templates on WeChat

Run 'wxnotify templates <subcommand> --help' for its flags.

Exit status: 0 success, 1 failure, 2 usage.
`

const templatesSyncUsage = `usage: wxnotify templates sync [--config wxnotify.yaml] [--app ID] [--dry-run] [--sandbox [--url URL]]

Reads the mini program's subscribe-message templates from WeChat
(getTemplateList), or with --sandbox from the sandbox WeChat of a running
wxnotify dev, and updates the templates section of wxnotify.yaml:
  - templates already there (matched by id) keep their alias, policy and
    comments; title, kind and keywords (names, types, labels, enum values)
    are filled in from WeChat;
  - new templates are added with an alias made from the title (or id) and
    policy reject: rename the alias freely, sync matches templates by id;
  - templates WeChat no longer has are flagged removed: true, not deleted.
Rules, other keys and comments are kept. The file is written only when the
result loads (a rule using a removed template must be changed first).

With several mini programs (a file with apps:), one app is synced at a
time: --app ID names it, and only apps[].templates of that app change (the
other apps, their templates and comments stay as they are), read from
WeChat with that app's credentials.

  --config FILE          the file to update (default $WXN_CONFIG, else wxnotify.yaml;
                         created when missing)
  --app ID               the app of a file with apps: whose templates to sync (default
                         $WXN_APP; required with apps)
  --dry-run              print the changes as a diff and write nothing
  --sandbox              read the templates of the sandbox WeChat of wxnotify dev (the
                         templates of the wxnotify.yaml it runs with; with --app, the
                         sandbox WeChat of that app) instead of WeChat
  --url URL              with --sandbox: wxnotify dev's base URL (default $WXN_URL, else
                         ` + defaultURL + `)

Environment, without --sandbox: WXN_WECHAT_APPID and WXN_WECHAT_SECRET (the
mini program's credentials), WXN_WECHAT_API_BASE (default
https://api.weixin.qq.com), or WXN_WECHAT_TOKEN_FREE=true inside WeChat Cloud
Hosting. With apps, the app's own WXN_APP_<ID>_WECHAT_APPID and
WXN_APP_<ID>_WECHAT_SECRET (<ID> upper-cased, '-' as '_': app sales-cn reads
WXN_APP_SALES_CN_WECHAT_SECRET); the AppID may also be the app's appId in
the file; the default app (defaultApp, else the app "default", else the
first) falls back to WXN_WECHAT_APPID and WXN_WECHAT_SECRET. The older names
WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE and WECHAT_TOKEN_FREE still
work, with a warning.

Exit status: 0 success (also when nothing changed), 1 failure, 2 usage.
`

// templates is `wxnotify templates`.
func (c *cli) templates(ctx context.Context, args []string) int {
	return c.subcommand("templates", templatesUsage, args, map[string]func([]string) int{
		"sync": func(args []string) int { return c.templatesSync(ctx, args) },
	})
}

// templatesSync is `wxnotify templates sync`.
func (c *cli) templatesSync(ctx context.Context, args []string) int {
	fset := flag.NewFlagSet("templates sync", flag.ContinueOnError)
	path := fset.String("config", "", "")
	appFlag := fset.String("app", "", "")
	dryRun := fset.Bool("dry-run", false, "")
	sandbox := fset.Bool("sandbox", false, "")
	devURL := fset.String("url", "", "")
	if _, code, ok := c.parse(fset, templatesSyncUsage, args, 0); !ok {
		return code
	}
	if *path == "" {
		*path = c.env("WXN_CONFIG")
	}
	if *path == "" {
		*path = "wxnotify.yaml"
	}
	if *devURL != "" && !*sandbox {
		return c.usageError("templates sync", templatesSyncUsage, "--url is for --sandbox; WeChat's address is WXN_WECHAT_API_BASE")
	}
	af := apiFlags{app: *appFlag}
	appID, _, err := af.resolveApp(c)
	if err != nil {
		return c.usageError("templates sync", templatesSyncUsage, err.Error())
	}
	raw, err := os.ReadFile(*path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.fail("templates sync", err)
	}
	target, err := findSyncTarget(raw, appID)
	if err != nil {
		if target.usage {
			return c.usageError("templates sync", templatesSyncUsage, fmt.Sprintf("%s: %v", *path, err))
		}
		return c.fail("templates sync", fmt.Errorf("%s: %w", *path, err))
	}
	var wcfg wechat.Config
	if *sandbox {
		wcfg, err = c.sandboxWeChat(ctx, *devURL, target)
		if err != nil {
			return c.fail("templates sync", err)
		}
	} else if wcfg, err = c.wechatConfig(target); err != nil {
		return c.usageError("templates sync", templatesSyncUsage, err.Error())
	}

	remote, err := fetchTemplates(ctx, wcfg)
	if err != nil {
		return c.fail("templates sync", err)
	}
	synced, rep, err := syncAppTemplates(raw, target.app, remote)
	if err != nil {
		if *dryRun && synced != nil {
			fmt.Fprint(c.stdout, unifiedDiff(*path, *path+" (synced)", string(raw), string(synced)))
		}
		return c.fail("templates sync", fmt.Errorf("%s: %w", *path, err))
	}
	if !rep.changed() && string(synced) == string(raw) {
		fmt.Fprintf(c.stdout, "%s is up to date with WeChat's %d templates%s\n", *path, len(remote), target.ofApp())
		return exitOK
	}
	if *dryRun {
		fmt.Fprint(c.stdout, unifiedDiff(*path, *path+" (synced)", string(raw), string(synced)))
		c.printSyncReport(rep, "would be ")
		return exitOK
	}
	if err := writeFileAtomic(*path, synced); err != nil {
		return c.fail("templates sync", err)
	}
	c.printSyncReport(rep, "")
	fmt.Fprintf(c.stdout, "wrote %s\n", *path)
	return exitOK
}

// syncTarget is the app whose templates a sync rewrites.
type syncTarget struct {
	// app is the id of an app of a file with apps; "" for a file of the
	// single-app shape (its top-level templates).
	app string
	// fileAppID is the app's appId in the file, if any.
	fileAppID string
	// isDefault: the app is the deployment's default app, whose
	// credentials fall back to the plain WXN_WECHAT_* variables.
	isDefault bool
	// usage: the error of findSyncTarget is the command line's (no
	// --app, or an app the file does not have).
	usage bool
}

// ofApp names the app for messages: "" for a single-app file.
func (t syncTarget) ofApp() string {
	if t.app == "" {
		return ""
	}
	return " of app " + t.app
}

// appsOfFile is what sync reads of wxnotify.yaml before syncing: which apps
// it has. It is decoded leniently (a file whose templates are still
// incomplete must sync); syncAppTemplates checks the rest.
type appsOfFile struct {
	DefaultApp string `yaml:"defaultApp"`
	Apps       []struct {
		ID    string `yaml:"id"`
		AppID string `yaml:"appId"`
	} `yaml:"apps"`
}

// findSyncTarget picks the app of raw (wxnotify.yaml, possibly empty)
// that a sync with --app app rewrites. A file of apps requires app, one of
// its ids; a file without apps takes no app but "default", its one app.
func findSyncTarget(raw []byte, app string) (syncTarget, error) {
	var f appsOfFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return syncTarget{}, fmt.Errorf("invalid yaml: %w", err)
	}
	if len(f.Apps) == 0 {
		if app != "" && app != config.DefaultAppID {
			return syncTarget{usage: true}, fmt.Errorf("--app %s: the file has no apps: (its one app is %q; drop --app)", app, config.DefaultAppID)
		}
		return syncTarget{isDefault: true}, nil
	}
	spec := config.File{DefaultApp: f.DefaultApp}
	var ids []string
	for _, a := range f.Apps {
		ids = append(ids, a.ID)
		spec.Apps = append(spec.Apps, config.AppSpec{ID: a.ID, AppID: a.AppID})
	}
	for _, a := range f.Apps {
		if a.ID == app {
			return syncTarget{app: a.ID, fileAppID: a.AppID, isDefault: a.ID == spec.Default()}, nil
		}
	}
	if app == "" {
		return syncTarget{usage: true}, fmt.Errorf("the file has %d apps: --app is required, one of %s", len(ids), strings.Join(ids, ", "))
	}
	return syncTarget{usage: true}, fmt.Errorf("--app %s: not an app of the file (its apps: %s)", app, strings.Join(ids, ", "))
}

func (c *cli) printSyncReport(rep syncReport, would string) {
	for _, part := range []struct {
		what    string
		aliases []string
	}{
		{"added", rep.Added}, {"updated", rep.Updated},
		{"flagged removed (no longer on WeChat)", rep.Removed}, {"restored", rep.Restored},
	} {
		if len(part.aliases) > 0 {
			fmt.Fprintf(c.stdout, "%s%s: %s\n", would, part.what, strings.Join(part.aliases, ", "))
		}
	}
}

// wechatConfig reads WeChat's credentials and endpoint from the
// environment, under the names the functions use (WXN_WECHAT_*): for an
// app of a file with apps, its own WXN_APP_<ID>_WECHAT_APPID and
// WXN_APP_<ID>_WECHAT_SECRET (the AppID else from the file), the default
// app falling back to the plain names, as the server resolves them.
func (c *cli) wechatConfig(t syncTarget) (wechat.Config, error) {
	appID, appIDVar := c.appEnv(t, "WXN_WECHAT_APPID")
	secret, secretVar := c.appEnv(t, "WXN_WECHAT_SECRET")
	cfg := wechat.Config{AppID: appID, Secret: secret, BaseURL: c.env("WXN_WECHAT_API_BASE")}
	switch {
	case t.fileAppID != "" && cfg.AppID != "" && cfg.AppID != t.fileAppID:
		return cfg, fmt.Errorf("%s: %q, but wxnotify.yaml gives app %q the AppID %q", appIDVar, cfg.AppID, t.app, t.fileAppID)
	case t.fileAppID != "":
		cfg.AppID, appIDVar = t.fileAppID, "the app's appId"
	}
	if v := c.env("WXN_WECHAT_TOKEN_FREE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("WXN_WECHAT_TOKEN_FREE: %q is not true or false", v)
		}
		cfg.TokenFree = b
	}
	if cfg.BaseURL != "" {
		if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("WXN_WECHAT_API_BASE: %q is not an http(s) URL", cfg.BaseURL)
		}
	}
	if !cfg.TokenFree && (cfg.AppID == "" || cfg.Secret == "") {
		return cfg, fmt.Errorf("%s and %s are required to read the templates%s from WeChat "+
			"(or --sandbox, to read those of wxnotify dev's sandbox WeChat)", appIDVar, secretVar, t.ofApp())
	}
	return cfg, nil
}

// appEnv reads the variable name (a WXN_WECHAT_* name) for the app of t:
// its own WXN_APP_<ID>_* variable, the default app falling back to name
// itself; a file without apps reads name. It returns the value and the
// variable(s) it was looked up in, for messages.
func (c *cli) appEnv(t syncTarget, name string) (value, from string) {
	if t.app == "" {
		return c.env(name), name
	}
	own := config.AppVariable(t.app, name)
	if v := strings.TrimSpace(c.getenv(own)); v != "" || !t.isDefault {
		return v, own
	}
	if v := c.env(name); v != "" {
		return v, name
	}
	return "", own + " (or " + name + ")"
}

// sandboxWeChat asks the wxnotify dev at base (--url, else $WXN_URL, else
// its default address) for its sandbox WeChat (GET /sandbox/wechat, or
// /sandbox/apps/ID/wechat for an app of a file with apps, answered with
// "app": ID) and
// returns the configuration
// that reads the templates from it, through the same WeChat API a real
// sync calls, at the path the answer gives.
func (c *cli) sandboxWeChat(ctx context.Context, base string, t syncTarget) (wechat.Config, error) {
	app := t.app
	if base == "" {
		base = c.env("WXN_URL")
	}
	if base == "" {
		base = defaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return wechat.Config{}, fmt.Errorf("--url: %q is not an http(s) URL", base)
	}
	base = strings.TrimRight(base, "/")
	api := &apiClient{base: base, http: c.http}
	var creds struct {
		App    string `json:"app"`
		AppID  string `json:"appid"`
		Secret string `json:"secret"`
		Path   string `json:"path"`
	}
	// The default app's sandbox is the short route's, on a dev of one app
	// as on a dev of several.
	route := "/sandbox/wechat"
	if app != "" && !t.isDefault {
		route = "/sandbox/apps/" + url.PathEscape(app) + "/wechat"
	}
	if _, err := api.call(ctx, "GET", route, nil, &creds); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound && (ae.Code == "app_not_found" || app != "") {
			return wechat.Config{}, fmt.Errorf("the wxnotify dev at %s has no app %q (is it running this wxnotify.yaml?): %w", base, app, err)
		}
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return wechat.Config{}, fmt.Errorf("%s runs no sandbox WeChat (it is not wxnotify dev, or dev runs with real WeChat credentials): "+
				"drop --sandbox and set WXN_WECHAT_APPID and WXN_WECHAT_SECRET", base)
		}
		if ae == nil {
			return wechat.Config{}, fmt.Errorf("%w (start it with wxnotify dev, or give its address with --url)", err)
		}
		return wechat.Config{}, err
	}
	if creds.AppID == "" || creds.Secret == "" || !strings.HasPrefix(creds.Path, "/") {
		return wechat.Config{}, fmt.Errorf("GET %s%s: the answer has no appid, secret and path", base, route)
	}
	// A dev of one app answers no app: its sandbox WeChat is the default
	// app's, right for that app only.
	switch {
	case app == "" || creds.App == app:
	case creds.App == "" && !t.isDefault:
		return wechat.Config{}, fmt.Errorf("GET %s%s: wxnotify dev answered the sandbox WeChat of its one app, not of app %q (is it running this wxnotify.yaml?)", base, route, app)
	case creds.App != "":
		return wechat.Config{}, fmt.Errorf("GET %s%s: the answer is for app %q, not %q", base, route, creds.App, app)
	}
	return wechat.Config{AppID: creds.AppID, Secret: creds.Secret, BaseURL: base + creds.Path}, nil
}

// fetchTemplates reads the app's templates from WeChat. Outside token-free
// mode the access token comes from stable_token through a token source on
// a throwaway store: in its normal mode stable_token hands out the token
// the deployed functions use without invalidating it, so a sync never
// disturbs them.
func fetchTemplates(ctx context.Context, cfg wechat.Config) ([]wechat.Template, error) {
	if !cfg.TokenFree {
		dir, err := os.MkdirTemp("", "wxnotify-sync-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		st, err := boltstore.Open(filepath.Join(dir, "token.db"))
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if cfg.Tokens, err = wechat.NewStoreTokenSource(st, cfg, wechat.TokenOptions{}); err != nil {
			return nil, err
		}
	}
	wx, err := wechat.New(cfg)
	if err != nil {
		return nil, err
	}
	return wx.GetTemplates(ctx)
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, keeping the mode of the file it replaces (0644 for a new
// one) and the symbolic link that led to it.
func writeFileAtomic(path string, data []byte) error {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target // replace the file a link points to, not the link
	}
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
