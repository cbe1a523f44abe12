package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/redis/go-redis/v9"
	scfevents "github.com/tencentyun/scf-go-lib/events"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/platform/cloudcall"
	"github.com/wxnotify/wxnotify/shared/platform/platformtest"
	"github.com/wxnotify/wxnotify/shared/secrets/secretstest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

const (
	apiKey        = "deploy-test-api-key-0123456789"
	sessionSecret = "deploy-test-session-secret-0123456789abcdef"
	baseURL       = "https://api.example.com" // the host the gateways report; the transports ignore it
)

// invokeFunc is a direct invocation of the function (Lambda Invoke, SCF
// Invoke); it returns the function's answer or its error.
type invokeFunc func(ctx context.Context, payload []byte) ([]byte, error)

// cloud runs one function process and connects a client to it.
type cloud interface {
	// with starts the function's binary with env, calls f with an HTTP
	// client and a direct invoker reaching it through the platform's
	// protocol, then stops the process.
	with(t *testing.T, function string, env []string, f func(c *http.Client, invoke invokeFunc))
	// tick is the platform's schedule event.
	tick() []byte
	// queue is the platform's queue event carrying bodies, and the answer
	// that acknowledges them all.
	queue(bodies ...string) (payload []byte, done string)
}

// process is a running function binary.
type process struct {
	cmd  *exec.Cmd
	out  *lockedbuf.Buffer
	ctx  context.Context // ends when the process exits
	done chan struct{}
}

// startProcess runs bin in its own directory, as the platforms do, with
// exactly env. The process is killed when the test ends; its output is
// logged if the test failed.
func startProcess(tb testing.TB, bin string, env []string) *process {
	tb.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &process{cmd: exec.Command(bin), out: &lockedbuf.Buffer{}, ctx: ctx, done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = filepath.Dir(bin), env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		cancel(fmt.Errorf("%s exited (%v):\n%s", filepath.Base(filepath.Dir(bin)), err, p.out.String()))
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", bin, p.out.String())
		}
	})
	return p
}

// stop kills the process, as the platforms do when they retire an
// instance, and waits for it.
func (p *process) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// within returns ctx, cancelled also when the process exits, with its
// output as the cause.
func (p *process) within(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(p.ctx, func() { cancel(context.Cause(p.ctx)) })
	return ctx, func() { stop(); cancel(nil) }
}

// lambdaPlatform runs functions under an emulated Lambda Runtime API and
// reaches their HTTP routes as API Gateway HTTP API does.
type lambdaPlatform struct{}

func (lambdaPlatform) with(t *testing.T, function string, env []string, f func(*http.Client, invokeFunc)) {
	t.Helper()
	api := platformtest.NewLambdaAPI(platformtest.LambdaOptions{Timeout: 10 * time.Second})
	defer api.Close()
	p := startProcess(t, binary(t, function), append(env, "AWS_LAMBDA_RUNTIME_API="+api.Addr()))
	defer p.stop()
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		ctx, cancel := p.within(r.Context())
		defer cancel()
		resp, err := (&platformtest.LambdaTransport{API: api}).RoundTrip(r.WithContext(ctx))
		if err != nil && context.Cause(ctx) != nil {
			return nil, context.Cause(ctx)
		}
		return resp, err
	})}
	invoke := func(ctx context.Context, payload []byte) ([]byte, error) {
		ctx, cancel := p.within(ctx)
		defer cancel()
		resp, err := api.Invoke(ctx, payload)
		if err != nil {
			return nil, errors.Join(err, context.Cause(ctx))
		}
		if resp.Error != nil {
			return nil, resp.Error
		}
		return resp.Payload, nil
	}
	f(client, invoke)
}

// scfPlatform runs functions as SCF's Go1 runtime does (net/rpc on
// _LAMBDA_SERVER_PORT) and reaches their HTTP routes as a Function URL does.
type scfPlatform struct{}

func (scfPlatform) with(t *testing.T, function string, env []string, f func(*http.Client, invokeFunc)) {
	t.Helper()
	port := freePort(t)
	p := startProcess(t, binary(t, function), append(env, "_LAMBDA_SERVER_PORT="+port))
	defer p.stop()
	ctx, cancel := p.within(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := platformtest.DialSCF(dctx, "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("dial the function: %v (%v)", err, context.Cause(ctx))
	}
	defer c.Close()
	invoke := func(ctx context.Context, payload []byte) ([]byte, error) { return c.Invoke(ctx, payload) }
	f(&http.Client{Transport: &platformtest.SCFTransport{Client: c}}, invoke)
}

func (lambdaPlatform) tick() []byte { return []byte(platform.ScheduleInput) }

func (lambdaPlatform) queue(bodies ...string) ([]byte, string) {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("msg-%d", i), Body: b,
			EventSource: "aws:sqs", Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	payload, _ := json.Marshal(ev)
	return payload, `{"batchItemFailures":[]}`
}

func (scfPlatform) tick() []byte {
	return []byte(`{"Type":"Timer","TriggerName":"tick","Time":"2026-11-21T09:30:00Z","Message":""}`)
}

func (scfPlatform) queue(bodies ...string) ([]byte, string) {
	var ev scfevents.CkafkaEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, scfevents.CkafkaRecord{Message: scfevents.CkafkaMessage{
			Topic: "wxnotify-leads", Partition: 0, Offset: int64(i), Body: b}})
	}
	payload, _ := json.Marshal(ev)
	return payload, "null"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// functionEnv is the environment of every function process: the fake
// WeChat's credentials and URL, the secrets, and store.
func functionEnv(fake *wechattest.Server, store []string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"WXN_WECHAT_APPID=" + fake.AppID(),
		"WXN_WECHAT_SECRET=" + fake.Secret(),
		"WXN_WECHAT_API_BASE=" + fake.URL(),
		"WXN_SESSION_SECRET=" + sessionSecret,
		"WXN_API_KEYS=" + apiKey,
		"WXN_LOG_LEVEL=info",
	}, store...)
}

// secretStore is a secretstest fake of either provider.
type secretStore interface {
	Put(id, value string)
	Deny(id string)
	Env(id string) []string
}

// secretStoreEnv is the environment of a function whose secrets are in
// the secret "wxnotify" of f, as the deployment files set it: the
// settings, and where the secret is. The secrets of functionEnv(fake,
// store), the Redis URL included, go into the secret's JSON.
func secretStoreEnv(tb testing.TB, f secretStore, fake *wechattest.Server, store []string) []string {
	tb.Helper()
	values := map[string]string{}
	var env []string
	for _, kv := range functionEnv(fake, store) {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(config.SecretNames(), k) {
			values[k] = v
		} else {
			env = append(env, kv)
		}
	}
	raw, err := json.Marshal(values)
	if err != nil {
		tb.Fatal(err)
	}
	f.Put("wxnotify", string(raw))
	return append(env, f.Env("wxnotify")...)
}

// boltEnv keeps the state in a bbolt file: one process at a time.
func boltEnv(tb testing.TB) []string {
	return []string{"WXN_STORE=bolt", "WXN_DATA_DIR=" + tb.TempDir()}
}

// redisEnv keeps the state in the test Redis (WXN_TEST_REDIS_URL, default
// 127.0.0.1:6379) under a prefix of its own, removed afterwards; ok is
// false when no Redis answers.
func redisEnv(tb testing.TB) (env []string, ok bool) {
	tb.Helper()
	url := os.Getenv("WXN_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("WXN_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, false
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "wxn-deploy-test-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		defer client.Close()
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return []string{"WXN_STORE=redis", "WXN_REDIS_URL=" + url, "WXN_REDIS_PREFIX=" + prefix}, true
}

func TestLambdaLoginAndSend(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	loginAndSend(t, lambdaPlatform{}, fake, functionEnv(fake, boltEnv(t)))
}

func TestSCFLoginAndSend(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	store, ok := redisEnv(t)
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Redis at WXN_TEST_REDIS_URL or 127.0.0.1:6379 (start one: redis-server --daemonize yes)")
		}
		t.Log("no Redis: the SCF run keeps its state in bbolt")
		store = boltEnv(t)
	}
	loginAndSend(t, scfPlatform{}, fake, functionEnv(fake, store))
}

// TestLambdaSecretsManager is the whole flow with the secrets read from
// (a local server speaking) AWS Secrets Manager at each cold start.
func TestLambdaSecretsManager(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	sm := secretstest.NewAWS()
	defer sm.Close()
	loginAndSend(t, lambdaPlatform{}, fake, secretStoreEnv(t, sm, fake, boltEnv(t)))
	if got := sm.Calls(); got != 5 {
		t.Errorf("GetSecretValue calls: got %d, want 5 (one per cold start of the 5 functions)", got)
	}
}

// TestSCFSecretStore is the whole flow with the secrets, the Redis URL
// included, read from (a local server speaking) Tencent Cloud SSM.
func TestSCFSecretStore(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	ssm := secretstest.NewTencent()
	defer ssm.Close()
	store, ok := redisEnv(t)
	if !ok {
		t.Log("no Redis: the SCF run keeps its state in bbolt")
		store = boltEnv(t)
	}
	loginAndSend(t, scfPlatform{}, fake, secretStoreEnv(t, ssm, fake, store))
	if got := ssm.Calls(); got != 5 {
		t.Errorf("GetSecretValue calls: got %d, want 5 (one per cold start of the 5 functions)", got)
	}
}

// TestSecretStoreInitFailure: a function whose secret cannot be read does
// not start: it exits with status 1 and a message saying what to fix.
func TestSecretStoreInitFailure(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	sm := secretstest.NewAWS()
	defer sm.Close()
	ssm := secretstest.NewTencent()
	defer ssm.Close()
	denied := secretStoreEnv(t, sm, fake, boltEnv(t))
	sm.Deny("wxnotify")
	typo := secretStoreEnv(t, ssm, fake, boltEnv(t))
	ssm.Put("wxnotify", `{"WXN_SESSION_SECRT":"0123456789abcdef0123456789abcdef"}`)
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"AccessDenied", append(denied, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1"),
			[]string{`login: secret "wxnotify" (WXN_SECRETS_SOURCE=aws-secretsmanager)`, "AccessDeniedException",
				"must be allowed GetSecretValue on this secret"}},
		{"UnknownKey", append(typo, "_LAMBDA_SERVER_PORT=1"),
			[]string{`login: secret "wxnotify" (WXN_SECRETS_SOURCE=tencent-ssm): unknown keys WXN_SESSION_SECRT`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t, "login"))
			cmd.Env = tt.env
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("got %v, want exit status 1\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			if !strings.Contains(string(out), `"version"`) {
				t.Errorf("no version line before the failure:\n%s", out)
			}
		})
	}
}

// loginAndSend is the whole flow of the seeds, one function process at a
// time: a mini program logs in (login), records two accepts of a template
// (consent), and a server sends twice (send): once by direct invocation in
// the cloud-call shape, once by POST /v1/notifications; a third send finds
// no credit left. Then a queue event (leads) and a schedule tick (batch).
func loginAndSend(t *testing.T, p cloud, fake *wechattest.Server, env []string) {
	tmpl := testTemplates()[0]
	var session struct {
		Token, OpenID string
		ExpiresAt     time.Time
	}
	p.with(t, "login", env, func(c *http.Client, _ invokeFunc) {
		var health map[string]bool
		if resp := call(t, c, "GET", "/healthz", "", nil, &health); resp.StatusCode != 200 || !health["ok"] {
			t.Fatalf("GET /healthz: got %d %v, want 200 ok", resp.StatusCode, health)
		}
		resp := call(t, c, "POST", "/v1/session", "", map[string]string{"code": fake.Login("alice")}, &session)
		if resp.StatusCode != 200 || session.Token == "" || session.OpenID != fake.OpenID("alice") {
			t.Fatalf("POST /v1/session: got %d %+v, want 200 with a token and alice's openid", resp.StatusCode, session)
		}
		if id := resp.Header.Get("X-Request-Id"); len(id) != 36 {
			t.Errorf("X-Request-Id: got %q, want the platform's request id", id)
		}
	})
	if t.Failed() {
		return
	}

	p.with(t, "consent", env, func(c *http.Client, _ invokeFunc) {
		for i := range 2 {
			result, err := fake.Subscribe(session.OpenID, map[string]string{tmpl.PriTmplID: "accept"})
			if err != nil {
				t.Fatal(err)
			}
			var state struct {
				Consents []struct {
					TemplateID string
					Credits    int
				}
			}
			resp := call(t, c, "POST", "/v1/consents", session.Token, map[string]any{"result": result}, &state)
			if resp.StatusCode != 200 {
				t.Fatalf("POST /v1/consents: got %d, want 200", resp.StatusCode)
			}
			for _, cs := range state.Consents {
				if cs.TemplateID == tmpl.PriTmplID && cs.Credits != i+1 {
					t.Errorf("credits after %d accepts: got %d", i+1, cs.Credits)
				}
			}
		}
	})
	if t.Failed() {
		return
	}

	data := map[string]any{}
	for _, kw := range tmpl.Keywords {
		data[kw.Name] = map[string]string{"value": kw.Example}
	}
	cloudCall, _ := json.Marshal(map[string]any{"touser": session.OpenID, "templateId": tmpl.PriTmplID,
		"page": "pages/index/index", "lang": "zh_CN", "data": data, "idempotencyKey": "e2e-1"})
	p.with(t, "send", env, func(c *http.Client, invoke invokeFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res := invokeCloudCall(ctx, t, invoke, cloudCall)
		if res.ErrCode != 0 || res.ErrMsg != "openapi.subscribeMessage.send:ok" || res.MsgID == "" {
			t.Fatalf("direct invocation: got %+v, want errCode 0 and a msgid", res)
		}
		if again := invokeCloudCall(ctx, t, invoke, cloudCall); again != res {
			t.Errorf("same idempotencyKey: got %+v, want %+v", again, res)
		}

		var n struct {
			ID, Status string
			WeChat     struct{ Msgid string }
		}
		body := map[string]any{"to": map[string]string{"openid": session.OpenID}, "template": "t0", "data": data}
		resp := call(t, c, "POST", "/v1/notifications", apiKey, body, &n)
		if resp.StatusCode != 200 || n.Status != "sent" || n.WeChat.Msgid == "" {
			t.Fatalf("POST /v1/notifications: got %d %+v, want 200 sent", resp.StatusCode, n)
		}
		var got struct{ ID, Status string }
		if resp := call(t, c, "GET", "/v1/notifications/"+n.ID, apiKey, nil, &got); resp.StatusCode != 200 || got.Status != "sent" {
			t.Errorf("GET /v1/notifications/%s: got %d %+v, want 200 sent", n.ID, resp.StatusCode, got)
		}

		noCredit, _ := json.Marshal(map[string]any{"touser": session.OpenID, "templateId": tmpl.PriTmplID, "data": data})
		if res := invokeCloudCall(ctx, t, invoke, noCredit); res.ErrCode != 43101 {
			t.Errorf("third send: got %+v, want errCode 43101", res)
		}
	})
	if msgs := fake.Messages(session.OpenID); len(msgs) != 2 {
		t.Errorf("WeChat delivered %d messages to alice, want 2", len(msgs))
	}

	// The queue and schedule cores through the same protocols: an event
	// whose type has no rule is acknowledged; a tick with nothing due runs.
	p.with(t, "leads", env, func(_ *http.Client, invoke invokeFunc) {
		payload, done := p.queue(`{"id":"evt-1","type":"lead.unknown","occurredAt":"2026-11-21T09:30:00Z","data":{}}`)
		out, err := invoke(context.Background(), payload)
		if err != nil || string(out) != done {
			t.Errorf("queue event: got %s, %v; want %s", out, err, done)
		}
	})
	p.with(t, "batch", env, func(_ *http.Client, invoke invokeFunc) {
		if out, err := invoke(context.Background(), p.tick()); err != nil || string(out) != "null" {
			t.Errorf("tick: got %s, %v; want null", out, err)
		}
	})
}

func invokeCloudCall(ctx context.Context, t *testing.T, invoke invokeFunc, payload []byte) cloudcall.Result {
	t.Helper()
	out, err := invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var res cloudcall.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("invoke answered %s: %v", out, err)
	}
	return res
}

// call sends a JSON request with a bearer token (if any) and decodes the
// JSON answer into out (if not nil).
func call(t *testing.T, c *http.Client, method, path, bearer string, body, out any) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s answered %s: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp
}
