package storeenv

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxnotify/wxnotify/shared/store/dynamostore"
)

// The test binary's dynalite (in memory), started by the first test that
// needs it and stopped by Main.
var dynalite dynaliteServer

type dynaliteServer struct {
	once     sync.Once
	cmd      *exec.Cmd
	exited   chan struct{}
	client   *dynamodb.Client
	endpoint string
	err      error
	tables   atomic.Int64
}

// DynamoClient returns a client of the shared dynalite, starting it on
// first use, and its endpoint.
func DynamoClient(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	dynalite.once.Do(dynalite.start)
	if dynalite.err != nil {
		unavailable(tb, fmt.Sprintf("dynalite unavailable (install it with `npm ci` in the module root): %v", dynalite.err))
	}
	return dynalite.client, dynalite.endpoint
}

// DynamoTable creates a table with a name unique in the run on client and
// drops it when tb ends.
func DynamoTable(tb testing.TB, client *dynamodb.Client) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%d", tableNameRe.ReplaceAllString(tb.Name(), "_"), dynalite.tables.Add(1))
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
	return name
}

// DynamoStore returns a store on a fresh table of the shared dynalite.
func DynamoStore(tb testing.TB) *dynamostore.Store {
	tb.Helper()
	client, _ := DynamoClient(tb)
	return dynamostore.New(client, DynamoTable(tb, client))
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
	// Not NewClient: the SDK refuses a custom HTTP client when
	// AWS_CA_BUNDLE is set. The transport adds TransactWriteItems.
	d.client = dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDDYNALITE", "dynalite", ""),
		BaseEndpoint: aws.String(d.endpoint),
		HTTPClient:   &http.Client{Transport: DynaliteTransport(http.DefaultTransport), Timeout: time.Minute},
	})
}

var errPortTaken = errors.New("port taken")

func (d *dynaliteServer) launch(bin string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	// #nosec G204 -- the module's own node_modules/.bin/dynalite, for tests
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

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on (now).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}
