// Package secrets reads the server's secrets from a secret store at cold
// start, so that they never travel as plain environment variables of a
// deployment: one secret whose value is a JSON object of environment
// variable names to values (package config decides which names it
// accepts).
//
// Where the secret lives is set by two variables:
//
//   - WXN_SECRETS_SOURCE: env (the default: no secret store, the variables
//     themselves are read), aws-secretsmanager or tencent-ssm.
//   - WXN_SECRETS_ID: the secret's name or ARN in AWS Secrets Manager, its
//     name in Tencent Cloud SSM.
//
// and optionally WXN_SECRETS_VERSION (the AWS version stage, default
// AWSCURRENT; the SSM version id, default SSM_Current) and
// WXN_SECRETS_ENDPOINT (the store's URL, for tests).
//
// The credentials are the function role's, from the variables the
// platform sets: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN and AWS_REGION on Lambda; TENCENTCLOUD_SECRETID,
// TENCENTCLOUD_SECRETKEY, TENCENTCLOUD_SESSIONTOKEN and TENCENTCLOUD_REGION
// on SCF.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/secrets/awssm"
	"github.com/wxnotify/wxnotify/shared/secrets/tencentssm"
)

// Sources, the values of WXN_SECRETS_SOURCE.
const (
	SourceEnv     = "env"
	SourceAWS     = "aws-secretsmanager"
	SourceTencent = "tencent-ssm"
)

// Names are the variables New reads to choose and reach the store (the
// credentials and region aside, which the platform sets).
func Names() []string {
	return []string{"WXN_SECRETS_SOURCE", "WXN_SECRETS_ID", "WXN_SECRETS_VERSION", "WXN_SECRETS_ENDPOINT"}
}

// MinRefreshInterval is the least time between two reads of the secret by
// Refresh: a flood of refusals by WeChat costs one read a minute.
const MinRefreshInterval = time.Minute

// fetchTimeout bounds one read of the secret.
const fetchTimeout = 5 * time.Second

// Options adjust New for tests.
type Options struct {
	// HTTPClient reads the secret. Default: 5 s dial, 10 s overall timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Loader reads one secret and keeps its values for the life of the
// process. It is safe for concurrent use.
type Loader struct {
	source, id string
	fetch      func(ctx context.Context) (string, error)
	now        func() time.Time

	mu      sync.Mutex
	values  map[string]string // nil until a read succeeded; never modified
	lastTry time.Time         // start of the last read
	flight  *flight           // the read in progress, if any
}

type flight struct {
	done   chan struct{}
	values map[string]string
	err    error
}

// New returns the Loader that WXN_SECRETS_SOURCE and WXN_SECRETS_ID name,
// read through getenv, or nil when the source is env (or unset). Errors
// name the variable to fix.
func New(getenv func(string) string, o Options) (*Loader, error) {
	source := strings.TrimSpace(getenv("WXN_SECRETS_SOURCE"))
	id := strings.TrimSpace(getenv("WXN_SECRETS_ID"))
	switch source {
	case "", SourceEnv:
		if id != "" {
			return nil, errors.New("WXN_SECRETS_ID: set without a secret store: set WXN_SECRETS_SOURCE to aws-secretsmanager or tencent-ssm, or unset WXN_SECRETS_ID")
		}
		return nil, nil
	case SourceAWS, SourceTencent:
	default:
		return nil, fmt.Errorf("WXN_SECRETS_SOURCE: %q is not env, aws-secretsmanager or tencent-ssm", source)
	}
	if id == "" {
		return nil, fmt.Errorf("WXN_SECRETS_ID: required with WXN_SECRETS_SOURCE=%s (the secret's name)", source)
	}
	hc := o.HTTPClient
	if hc == nil {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second}}
	}
	l := &Loader{source: source, id: id, now: o.Now}
	if l.now == nil {
		l.now = time.Now
	}
	version := strings.TrimSpace(getenv("WXN_SECRETS_VERSION"))
	endpoint := strings.TrimSpace(getenv("WXN_SECRETS_ENDPOINT"))
	switch source {
	case SourceAWS:
		region := getenv("AWS_REGION")
		if region == "" {
			region = getenv("AWS_DEFAULT_REGION")
		}
		c, err := awssm.New(awssm.Config{SecretID: id, VersionStage: version, Region: region, Endpoint: endpoint,
			Credentials: aws.Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"),
				SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: getenv("AWS_SESSION_TOKEN")},
			HTTPClient: hc, Now: l.now})
		if err != nil {
			return nil, fmt.Errorf("WXN_SECRETS_SOURCE=%s: %w", source, err)
		}
		l.fetch = c.GetSecretValue
	case SourceTencent:
		c, err := tencentssm.New(tencentssm.Config{SecretName: id, VersionID: version, Region: getenv("TENCENTCLOUD_REGION"),
			Endpoint: endpoint, Credentials: tencentssm.Credentials{SecretID: getenv("TENCENTCLOUD_SECRETID"),
				SecretKey: getenv("TENCENTCLOUD_SECRETKEY"), Token: getenv("TENCENTCLOUD_SESSIONTOKEN")},
			HTTPClient: hc, Now: l.now})
		if err != nil {
			return nil, fmt.Errorf("WXN_SECRETS_SOURCE=%s: %w", source, err)
		}
		l.fetch = c.GetSecretValue
	}
	return l, nil
}

// Source is the store, as WXN_SECRETS_SOURCE names it.
func (l *Loader) Source() string { return l.source }

// ID is the secret's name or ARN (not a secret itself).
func (l *Loader) ID() string { return l.id }

// Load returns the secret's values: read once, then kept. A failed read is
// retried by the next call.
func (l *Loader) Load(ctx context.Context) (map[string]string, error) {
	l.mu.Lock()
	if v := l.values; v != nil {
		l.mu.Unlock()
		return v, nil
	}
	f := l.startLocked(ctx)
	l.mu.Unlock()
	return wait(ctx, f)
}

// Refresh reads the secret again, for a value that was refused (WeChat
// refusing a rotated AppSecret), and returns its values. Reads are at
// least MinRefreshInterval apart: within that time Refresh returns the
// values kept (or the read in progress, shared by every caller).
func (l *Loader) Refresh(ctx context.Context) (map[string]string, error) {
	l.mu.Lock()
	f := l.flight
	if f == nil {
		if v := l.values; v != nil && l.now().Sub(l.lastTry) < MinRefreshInterval {
			l.mu.Unlock()
			return v, nil
		}
		f = l.startLocked(ctx)
	}
	l.mu.Unlock()
	return wait(ctx, f)
}

// startLocked starts a read, detached from ctx's cancellation (others may
// wait for it) but bounded by fetchTimeout. l.mu must be held.
func (l *Loader) startLocked(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	l.flight, l.lastTry = f, l.now()
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		values, err := l.read(fctx)
		l.mu.Lock()
		if err == nil {
			l.values = values
		}
		l.flight = nil
		f.values, f.err = values, err
		l.mu.Unlock()
		close(f.done)
	}()
	return f
}

func wait(ctx context.Context, f *flight) (map[string]string, error) {
	select {
	case <-f.done:
		return f.values, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// read fetches and decodes the secret; errors name the source and secret.
func (l *Loader) read(ctx context.Context) (map[string]string, error) {
	raw, err := l.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("secret %q (WXN_SECRETS_SOURCE=%s): %w%s", l.id, l.source, err, hint(err))
	}
	values, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %q (WXN_SECRETS_SOURCE=%s): %w", l.id, l.source, err)
	}
	return values, nil
}

// hint says what to do about a store's refusal.
func hint(err error) string {
	var code string
	if e, ok := errors.AsType[*awssm.Error](err); ok {
		code = e.Code
	} else if e, ok := errors.AsType[*tencentssm.Error](err); ok {
		code = e.Code
	}
	switch {
	case code == "ResourceNotFoundException" || code == "ResourceNotFound":
		return " (check WXN_SECRETS_ID and that the secret is in the function's region)"
	case code == "AccessDeniedException" || code == "UnauthorizedOperation" || code == "AuthFailure.UnauthorizedOperation":
		return " (the function's role must be allowed GetSecretValue on this secret)"
	case strings.HasPrefix(code, "AuthFailure") || code == "InvalidSignatureException" ||
		code == "UnrecognizedClientException" || code == "ExpiredTokenException":
		return " (the credentials were refused: run the function with a role, whose credentials the platform puts in the environment)"
	case code == "DecryptionFailure":
		return " (the function's role must be allowed kms:Decrypt with the secret's key)"
	}
	return ""
}

// Decode reads a secret's value: one JSON object whose values are all
// strings. Its keys are not checked here.
func Decode(raw string) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		return nil, errors.New(`the secret's value is not a JSON object (want {"WXN_SESSION_SECRET": "...", ...})`)
	}
	values := make(map[string]string, len(obj))
	var bad []string
	for k, v := range obj {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad = append(bad, k)
			continue
		}
		values[k] = s
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("the secret's values must be JSON strings: %s", strings.Join(bad, ", "))
	}
	return values, nil
}
