package dynamostore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"wxnotify/shared/store/dynamostore"
)

// The package's tests share one dynalite (npm package, in-memory), started
// by the first test that needs it and stopped by TestMain.
var server dynaliteServer

func TestMain(m *testing.M) {
	code := m.Run()
	server.stop()
	os.Exit(code)
}

type dynaliteServer struct {
	once     sync.Once
	cmd      *exec.Cmd
	exited   chan struct{}
	client   *dynamodb.Client
	endpoint string
	err      error
	tables   atomic.Int64
}

// dynamoClient returns a client of the shared dynalite, starting it on first
// use. Without dynalite the test fails under CI=true and is skipped
// otherwise.
func dynamoClient(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	server.once.Do(server.start)
	if server.err != nil {
		msg := fmt.Sprintf("dynalite unavailable (install it with `npm ci` in the module root): %v", server.err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPING DynamoDB tests: " + msg)
	}
	return server.client
}

// newTable creates a table with a name unique in the run and drops it when
// the test ends.
func newTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	client := dynamoClient(tb)
	name := fmt.Sprintf("%s-%d", tableNameRe.ReplaceAllString(tb.Name(), "_"), server.tables.Add(1))
	if len(name) > 255 {
		name = name[len(name)-255:]
	}
	ctx := context.Background()
	if err := dynamostore.CreateTable(ctx, client, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			tb.Errorf("delete table %s: %v", name, err)
		}
	})
	return client, name
}

var tableNameRe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

func (d *dynaliteServer) start() {
	bin, err := dynaliteBin()
	if err != nil {
		d.err = err
		return
	}
	// dynalite takes no port 0: pick a free port, and pick again if another
	// process took it before dynalite could.
	for range 3 {
		if d.err = d.launch(bin); d.err == nil || !errors.Is(d.err, errPortTaken) {
			break
		}
	}
	if d.err != nil {
		return
	}
	d.client, d.err = dynamostore.NewClient(context.Background(), d.endpoint,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDDYNALITE", "dynalite", "")),
	)
}

var errPortTaken = errors.New("port taken")

func (d *dynaliteServer) launch(bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	setDeathSignal(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening at") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
		d.cmd, d.exited, d.endpoint = cmd, exited, "http://127.0.0.1:"+strconv.Itoa(port)
		return nil
	case <-exited:
		if strings.Contains(stderr.String(), "EADDRINUSE") {
			return fmt.Errorf("dynalite on port %d: %w", port, errPortTaken)
		}
		return fmt.Errorf("dynalite exited: %s", strings.TrimSpace(stderr.String()))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("dynalite did not start within 30s: %s", strings.TrimSpace(stderr.String()))
	}
}

func (d *dynaliteServer) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// dynaliteBin finds node_modules/.bin/dynalite in the module root, the
// directory of go.mod above the test's working directory.
func dynaliteBin() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s not found", bin)
	}
	return bin, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// proxiedClient returns a client of the shared dynalite whose requests go
// through p.
func proxiedClient(tb testing.TB, p *proxy) *dynamodb.Client {
	tb.Helper()
	dynamoClient(tb)
	// Not NewClient: the SDK refuses a custom HTTP client when AWS_CA_BUNDLE
	// is set.
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDYNALITE", "dynalite", ""),
		BaseEndpoint: aws.String(server.endpoint),
		HTTPClient:   &http.Client{Transport: p, Timeout: time.Minute},
	})
}

// proxy is an http.RoundTripper in front of dynalite. It counts requests
// and, with returnItemOnFailure, answers like DynamoDB to requests with
// ReturnValuesOnConditionCheckFailure ALL_OLD: a ConditionalCheckFailed
// answer carries the item. It reads the item after the failure, so under
// concurrent writes the item may be newer than the one that failed the
// condition; the Store copes with that as it does with its own reads.
type proxy struct {
	returnItemOnFailure bool
	requests            atomic.Int64
}

func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	p.requests.Add(1)
	if !p.returnItemOnFailure || req.Body == nil {
		return http.DefaultTransport.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	var in struct {
		TableName                           string
		Key                                 json.RawMessage
		ReturnValuesOnConditionCheckFailure string
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ReturnValuesOnConditionCheckFailure != "ALL_OLD" {
		return resp, nil
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var failure map[string]any
	if err := json.Unmarshal(answer, &failure); err == nil {
		if typ, _ := failure["__type"].(string); strings.HasSuffix(typ, "#ConditionalCheckFailedException") {
			item, err := p.getItem(req, in.TableName, in.Key)
			if err != nil {
				return nil, err
			}
			if item != nil {
				failure["Item"] = item
				if answer, err = json.Marshal(failure); err != nil {
					return nil, err
				}
				resp.Header.Del("X-Amz-Crc32") // the checksum was of the original answer
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.ContentLength = int64(len(answer))
	resp.Header.Set("Content-Length", strconv.Itoa(len(answer)))
	return resp, nil
}

// getItem reads an item with the headers of req (dynalite checks that a
// signature is present, not that it matches the body).
func (p *proxy) getItem(req *http.Request, table string, key json.RawMessage) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"TableName": table, "Key": key, "ConsistentRead": true})
	if err != nil {
		return nil, err
	}
	get := req.Clone(req.Context())
	get.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	get.Body, get.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	get.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp, err := http.DefaultTransport.RoundTrip(get)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Item json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GetItem: status %s", resp.Status)
	}
	return out.Item, nil
}
