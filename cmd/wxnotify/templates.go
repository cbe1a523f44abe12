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

	"github.com/wxnotify/wxnotify/shared/store/boltstore"
	"github.com/wxnotify/wxnotify/shared/wechat"
)

const templatesUsage = `usage: wxnotify templates <subcommand> [flags]

subcommands:
  sync   update wxnotify.yaml's templates from the app's templates on WeChat

Run 'wxnotify templates <subcommand> --help' for its flags.

Exit status: 0 success, 1 failure, 2 usage.
`

const templatesSyncUsage = `usage: wxnotify templates sync [--config wxnotify.yaml] [--dry-run] [--sandbox [--url URL]]

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

  --config FILE          the file to update (default $WXN_CONFIG, else wxnotify.yaml;
                         created when missing)
  --dry-run              print the changes as a diff and write nothing
  --sandbox              read the templates of the sandbox WeChat of wxnotify dev (the
                         templates of the wxnotify.yaml it runs with) instead of WeChat
  --url URL              with --sandbox: wxnotify dev's base URL (default $WXN_URL, else
                         ` + defaultURL + `)

Environment, without --sandbox: WXN_WECHAT_APPID and WXN_WECHAT_SECRET (the
mini program's credentials), WXN_WECHAT_API_BASE (default
https://api.weixin.qq.com), or WXN_WECHAT_TOKEN_FREE=true inside WeChat Cloud
Hosting. The older names WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE and
WECHAT_TOKEN_FREE still work, with a warning.

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
	var wcfg wechat.Config
	var err error
	if *sandbox {
		wcfg, err = c.sandboxWeChat(ctx, *devURL)
		if err != nil {
			return c.fail("templates sync", err)
		}
	} else if wcfg, err = c.wechatConfig(); err != nil {
		return c.usageError("templates sync", templatesSyncUsage, err.Error())
	}

	raw, err := os.ReadFile(*path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.fail("templates sync", err)
	}
	remote, err := fetchTemplates(ctx, wcfg)
	if err != nil {
		return c.fail("templates sync", err)
	}
	synced, rep, err := syncTemplates(raw, remote)
	if err != nil {
		if *dryRun && synced != nil {
			fmt.Fprint(c.stdout, unifiedDiff(*path, *path+" (synced)", string(raw), string(synced)))
		}
		return c.fail("templates sync", fmt.Errorf("%s: %w", *path, err))
	}
	if !rep.changed() && string(synced) == string(raw) {
		fmt.Fprintf(c.stdout, "%s is up to date with WeChat's %d templates\n", *path, len(remote))
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
// environment, under the names the functions use (WXN_WECHAT_*).
func (c *cli) wechatConfig() (wechat.Config, error) {
	cfg := wechat.Config{
		AppID:   c.env("WXN_WECHAT_APPID"),
		Secret:  c.env("WXN_WECHAT_SECRET"),
		BaseURL: c.env("WXN_WECHAT_API_BASE"),
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
		return cfg, errors.New("WXN_WECHAT_APPID and WXN_WECHAT_SECRET are required to read the templates from WeChat " +
			"(or --sandbox, to read those of wxnotify dev's sandbox WeChat)")
	}
	return cfg, nil
}

// sandboxWeChat asks the wxnotify dev at base (--url, else $WXN_URL, else
// its default address) for its sandbox WeChat (GET /sandbox/wechat) and
// returns the configuration that reads the templates from it, through the
// same WeChat API a real sync calls, at /sandbox/wechat/.
func (c *cli) sandboxWeChat(ctx context.Context, base string) (wechat.Config, error) {
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
		AppID  string `json:"appid"`
		Secret string `json:"secret"`
		Path   string `json:"path"`
	}
	if _, err := api.call(ctx, "GET", "/sandbox/wechat", nil, &creds); err != nil {
		var ae *apiError
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
		return wechat.Config{}, fmt.Errorf("GET %s/sandbox/wechat: the answer has no appid, secret and path", base)
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
