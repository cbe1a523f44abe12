// Package tencentssm reads one secret from Tencent Cloud Secrets Manager
// (SSM): the GetSecretValue action of API 3.0 (version 2019-09-23) over
// net/http, signed with TC3-HMAC-SHA256 (signature v3, package cloudauth).
package tencentssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/secrets/internal/wire"
)

const (
	// DefaultHost is SSM's API host.
	DefaultHost = "ssm.tencentcloudapi.com"
	// DefaultVersionID is the version GetSecretValue reads by default: the
	// one SSM's rotation marks current.
	DefaultVersionID = "SSM_Current"

	service    = "ssm"
	action     = "GetSecretValue"
	apiVersion = "2019-09-23"
)

// Credentials are Tencent Cloud API credentials: on SCF, the function
// role's temporary ones (TENCENTCLOUD_SECRETID, TENCENTCLOUD_SECRETKEY,
// TENCENTCLOUD_SESSIONTOKEN).
type Credentials = cloudauth.TencentCredentials

// Config configures a Client.
type Config struct {
	// SecretName is the SSM secret's name.
	SecretName string
	// VersionID is the version to read (default SSM_Current).
	VersionID string
	// Region is the secret's region (TENCENTCLOUD_REGION), e.g. ap-guangzhou.
	Region      string
	Credentials Credentials
	// Endpoint replaces https://ssm.tencentcloudapi.com, for tests.
	Endpoint string
	// HTTPClient makes the call; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock of the signature. Default time.Now.
	Now func() time.Time
}

// Client reads one secret.
type Client struct {
	cfg      Config
	endpoint string
}

// Error is an answer of SSM with Response.Error: Code such as
// ResourceNotFound, UnauthorizedOperation or AuthFailure.SignatureFailure.
type Error struct {
	Code      string
	Message   string
	RequestID string
}

func (e *Error) Error() string {
	msg := "tencent ssm GetSecretValue: " + e.Code
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// New returns a Client for cfg, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.SecretName == "":
		return nil, errors.New("no secret name")
	case cfg.Region == "":
		return nil, errors.New("no region: TENCENTCLOUD_REGION is unset")
	case cfg.Credentials.SecretID == "" || cfg.Credentials.SecretKey == "":
		return nil, cloudauth.ErrNoTencentCredentials
	case cfg.HTTPClient == nil:
		return nil, errors.New("no HTTP client")
	}
	if cfg.VersionID == "" {
		cfg.VersionID = DefaultVersionID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://" + DefaultHost
	}
	base, _, err := wire.Endpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, endpoint: base}, nil
}

// Endpoint is the URL the client calls.
func (c *Client) Endpoint() string { return c.endpoint }

type getSecretValueInput struct {
	SecretName string `json:"SecretName"`
	VersionID  string `json:"VersionId"`
}

type getSecretValueOutput struct {
	Response struct {
		SecretName   string `json:"SecretName"`
		VersionID    string `json:"VersionId"`
		SecretString string `json:"SecretString"`
		SecretBinary string `json:"SecretBinary"`
		RequestID    string `json:"RequestId"`
		Error        *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
	} `json:"Response"`
}

// GetSecretValue returns the secret's SecretString. It returns *Error for
// an answer with Response.Error.
func (c *Client) GetSecretValue(ctx context.Context) (string, error) {
	body, err := json.Marshal(getSecretValueInput{SecretName: c.cfg.SecretName, VersionID: c.cfg.VersionID})
	if err != nil {
		return "", err
	}
	req, err := cloudauth.NewTC3Request(ctx, cloudauth.TC3Call{Service: service, Action: action, Version: apiVersion,
		Region: c.cfg.Region, Endpoint: c.endpoint}, c.cfg.Credentials, body, c.cfg.Now())
	if err != nil {
		return "", err
	}
	status, data, err := wire.Do(c.cfg.HTTPClient, req, "tencent ssm GetSecretValue")
	if err != nil {
		return "", err
	}
	var out getSecretValueOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("tencent ssm GetSecretValue: http %d, malformed answer: %w", status, err)
	}
	r := out.Response
	if r.Error != nil {
		return "", &Error{Code: r.Error.Code, Message: r.Error.Message, RequestID: r.RequestID}
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("tencent ssm GetSecretValue: http status %d", status)
	}
	if r.SecretString == "" {
		if r.SecretBinary != "" {
			return "", errors.New("tencent ssm GetSecretValue: the secret is binary: store the JSON object as its secret string")
		}
		return "", errors.New("tencent ssm GetSecretValue: the secret string is empty")
	}
	return r.SecretString, nil
}
