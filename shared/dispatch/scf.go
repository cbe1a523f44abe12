package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/notify"
)

// SCF API 3.0's Invoke.
const (
	// DefaultSCFHost is SCF's API host.
	DefaultSCFHost = "scf.tencentcloudapi.com"
	scfService     = "scf"
	scfAction      = "Invoke"
	scfVersion     = "2018-04-16"
)

// SCFConfig configures an SCF dispatcher.
type SCFConfig struct {
	// Function, Namespace and Qualifier name the function invoked: the
	// batch function itself (SCF_FUNCTIONNAME, SCF_NAMESPACE,
	// SCF_FUNCTIONVERSION). Namespace defaults to "default", Qualifier to
	// $LATEST.
	Function, Namespace, Qualifier string
	// Region is the function's region (TENCENTCLOUD_REGION).
	Region string
	// Endpoint replaces https://scf.tencentcloudapi.com (the internal
	// endpoint, tests).
	Endpoint string
	// Credentials are read at each dispatch: on SCF, the role's from the
	// environment (cloudauth.TencentFromEnv).
	Credentials func() (cloudauth.TencentCredentials, error)
	// HTTPClient makes the calls; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock of the signatures; default time.Now.
	Now func() time.Time
	// Attempts, Backoff and Concurrency: see the defaults.
	Attempts    int
	Backoff     time.Duration
	Concurrency int
}

// SCF hands each shard to an asynchronous invocation of a function.
type SCF struct {
	cfg SCFConfig
}

var _ notify.ShardDispatcher = (*SCF)(nil)

// NewSCF returns the dispatcher of cfg, or an error naming what is missing.
func NewSCF(cfg SCFConfig) (*SCF, error) {
	switch {
	case cfg.Function == "":
		return nil, errors.New("no function: SCF_FUNCTIONNAME is unset (SCF sets it)")
	case cfg.Region == "":
		return nil, errors.New("no region: TENCENTCLOUD_REGION is unset (SCF sets it)")
	case cfg.Credentials == nil:
		return nil, errors.New("no credentials")
	case cfg.HTTPClient == nil:
		return nil, errors.New("no HTTP client")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://" + DefaultSCFHost + "/"
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/") + "/"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return &SCF{cfg: cfg}, nil
}

// Endpoint is the API endpoint the dispatcher calls.
func (d *SCF) Endpoint() string { return d.cfg.Endpoint }

type invokeInput struct {
	FunctionName   string `json:"FunctionName"`
	InvocationType string `json:"InvocationType"`
	ClientContext  string `json:"ClientContext"`
	Namespace      string `json:"Namespace"`
	Qualifier      string `json:"Qualifier,omitempty"`
}

type invokeOutput struct {
	Response struct {
		Result *struct {
			FunctionRequestID string `json:"FunctionRequestId"`
		} `json:"Result"`
		RequestID string `json:"RequestId"`
		Error     *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
	} `json:"Response"`
}

// DispatchShards invokes the function asynchronously once per shard, a few
// calls at once; a call that failed on SCF's side (an internal error, a
// rate limit) or got no answer is made again, up to Attempts times. The
// error names the shards that were not queued.
func (d *SCF) DispatchShards(ctx context.Context, refs []notify.ShardRef) error {
	if len(refs) == 0 {
		return nil
	}
	creds, err := d.cfg.Credentials()
	if err != nil {
		return fmt.Errorf("scf: %w", err)
	}
	errs := each(len(refs), d.cfg.Concurrency, func(i int) error {
		var err error
		for attempt := range d.cfg.Attempts {
			if attempt > 0 {
				if serr := sleep(ctx, d.cfg.Backoff<<(attempt-1)); serr != nil {
					return errors.Join(err, serr)
				}
			}
			if err = d.invoke(ctx, creds, refs[i]); err == nil || !retryable(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("shard %d of batch %s: %w", refs[i].Shard, refs[i].Batch, err)
		}
		return nil
	})
	return errors.Join(errs...)
}

// invoke makes one Invoke call of the function with ref's message.
func (d *SCF) invoke(ctx context.Context, creds cloudauth.TencentCredentials, ref notify.ShardRef) error {
	const op = "scf Invoke"
	body, err := json.Marshal(invokeInput{FunctionName: d.cfg.Function, InvocationType: "Event", ClientContext: string(Encode(ref)),
		Namespace: d.cfg.Namespace, Qualifier: d.cfg.Qualifier})
	if err != nil {
		return err
	}
	req, err := cloudauth.NewTC3Request(ctx, cloudauth.TC3Call{Service: scfService, Action: scfAction, Version: scfVersion,
		Region: d.cfg.Region, Endpoint: d.cfg.Endpoint}, creds, body, d.cfg.Now())
	if err != nil {
		return err
	}
	status, data, err := do(d.cfg.HTTPClient, req, op)
	if err != nil {
		return err
	}
	var out invokeOutput
	jerr := json.Unmarshal(data, &out)
	r := out.Response
	switch {
	case jerr == nil && r.Error != nil:
		c := r.Error.Code
		return &APIError{Op: op, Status: status, Code: c, Message: r.Error.Message, RequestID: r.RequestID,
			Retryable: strings.HasPrefix(c, "InternalError") || strings.HasPrefix(c, "RequestLimitExceeded") ||
				strings.HasPrefix(c, "ResourceUnavailable") || strings.HasPrefix(c, "LimitExceeded")}
	case status != http.StatusOK:
		return &APIError{Op: op, Status: status, Code: http.StatusText(status), Retryable: status >= 500 || status == http.StatusTooManyRequests}
	case jerr != nil || r.Result == nil:
		return &APIError{Op: op, Status: status, Code: "MalformedAnswer", RequestID: r.RequestID, Retryable: true}
	}
	return nil
}
