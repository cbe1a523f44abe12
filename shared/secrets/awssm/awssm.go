// Package awssm reads one secret from AWS Secrets Manager: the
// GetSecretValue action of its JSON protocol over net/http, signed with
// Signature Version 4 by the AWS SDK's signer (package cloudauth; the rest of the SDK's
// Secrets Manager client would add its weight to every function binary for
// one call made at cold start).
//
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
package awssm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxnotify/wxnotify/shared/internal/cloudauth"
	"github.com/wxnotify/wxnotify/shared/secrets/internal/wire"
)

// DefaultVersionStage is the version GetSecretValue returns by default.
const DefaultVersionStage = "AWSCURRENT"

// Config configures a Client.
type Config struct {
	// SecretID is the secret's name or ARN. An ARN's region and partition
	// choose the endpoint (a secret is read in its own region).
	SecretID string
	// VersionStage is the staging label to read (default AWSCURRENT).
	VersionStage string
	// Region is the region of a secret named by name (AWS_REGION).
	Region string
	// Credentials sign the request: on Lambda, the function role's
	// temporary credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN).
	Credentials aws.Credentials
	// Endpoint replaces https://secretsmanager.<region>.<domain>, for tests.
	Endpoint string
	// HTTPClient makes the call; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock of the signature. Default time.Now.
	Now func() time.Time
}

// Client reads one secret.
type Client struct {
	cfg      Config
	region   string
	endpoint string
}

// Error is an answer of Secrets Manager with an error: Code is its type,
// such as ResourceNotFoundException or AccessDeniedException.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("aws secretsmanager GetSecretValue: %s (http %d)", e.Code, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// New returns a Client for cfg, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	region, partition := cfg.Region, "aws"
	if arn, ok := parseARN(cfg.SecretID); ok {
		region, partition = arn.region, arn.partition
	}
	switch {
	case cfg.SecretID == "":
		return nil, errors.New("no secret id (the secret's name or ARN)")
	case region == "":
		return nil, errors.New("no region: AWS_REGION is unset and the secret id is not an ARN")
	case cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "":
		return nil, errors.New("no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset (Lambda sets them from the function's role)")
	case cfg.HTTPClient == nil:
		return nil, errors.New("no HTTP client")
	}
	if cfg.VersionStage == "" {
		cfg.VersionStage = DefaultVersionStage
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://secretsmanager." + region + "." + cloudauth.AWSDomain(partition, region)
	}
	base, _, err := wire.Endpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, region: region, endpoint: base}, nil
}

// Endpoint is the URL the client calls.
func (c *Client) Endpoint() string { return c.endpoint }

type arn struct{ partition, region string }

// parseARN reads arn:<partition>:secretsmanager:<region>:<account>:secret:<name>.
func parseARN(id string) (arn, bool) {
	f := strings.SplitN(id, ":", 7)
	if len(f) != 7 || f[0] != "arn" || f[2] != "secretsmanager" || f[3] == "" {
		return arn{}, false
	}
	return arn{partition: f[1], region: f[3]}, true
}

type getSecretValueInput struct {
	SecretID     string `json:"SecretId"`
	VersionStage string `json:"VersionStage,omitempty"`
}

type getSecretValueOutput struct {
	Name         string `json:"Name"`
	SecretString string `json:"SecretString"`
	SecretBinary []byte `json:"SecretBinary"`
}

// errorBody is the JSON protocol's error: __type may be prefixed with a
// namespace ("com.amazonaws.secretsmanager#ResourceNotFoundException"),
// and the message spelled message or Message.
type errorBody struct {
	Type     string `json:"__type"`
	Message  string `json:"message"`
	MessageU string `json:"Message"`
}

// GetSecretValue returns the secret's SecretString. It returns *Error for
// an error answer of Secrets Manager.
func (c *Client) GetSecretValue(ctx context.Context) (string, error) {
	body, err := json.Marshal(getSecretValueInput{SecretID: c.cfg.SecretID, VersionStage: c.cfg.VersionStage})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	if err := cloudauth.SignAWS(ctx, req, body, c.cfg.Credentials, "secretsmanager", c.region, c.cfg.Now()); err != nil {
		return "", err
	}
	status, data, err := wire.Do(c.cfg.HTTPClient, req, "aws secretsmanager GetSecretValue")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		var e errorBody
		_ = json.Unmarshal(data, &e)
		code := e.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "" {
			code = http.StatusText(status)
		}
		msg := e.Message
		if msg == "" {
			msg = e.MessageU
		}
		return "", &Error{Status: status, Code: code, Message: msg}
	}
	var out getSecretValueOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("aws secretsmanager GetSecretValue: malformed answer: %w", err)
	}
	if out.SecretString == "" {
		if len(out.SecretBinary) > 0 {
			return "", errors.New("aws secretsmanager GetSecretValue: the secret is binary: store the JSON object as its secret string")
		}
		return "", errors.New("aws secretsmanager GetSecretValue: the secret string is empty")
	}
	return out.SecretString, nil
}
