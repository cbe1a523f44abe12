package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxnotify/wxnotify/internal/lockedbuf"
	"github.com/wxnotify/wxnotify/shared/platform/platformtest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// maxBinaryBytes is the size budget of a stripped function binary.
const maxBinaryBytes = 15 << 20

func TestBinarySize(t *testing.T) {
	empty, err := os.Stat(binary(t, "emptyfn"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range functions {
		fi, err := os.Stat(binary(t, fn))
		if err != nil {
			t.Fatal(err)
		}
		ratio := float64(fi.Size()) / float64(empty.Size())
		t.Logf("%s: %.2f MiB, %.2fx the empty aws-lambda-go function (%.2f MiB)", fn, float64(fi.Size())/(1<<20), ratio, float64(empty.Size())/(1<<20))
		maxBytes, maxRatio := int64(maxBinaryBytes), maxSizeRatio
		if fn == "console" {
			maxBytes, maxRatio = maxConsoleBytes, maxConsoleRatio
		}
		if fi.Size() > maxBytes || ratio > maxRatio {
			t.Errorf("%s: %.1f MiB, %.2fx the empty function; want at most %d MiB and %.1fx (a dependency that keeps all methods, such as net/rpc's server, is back?)",
				fn, float64(fi.Size())/(1<<20), ratio, maxBytes>>20, maxRatio)
		}
	}
}

// maxConsoleBytes and maxConsoleRatio are the console function's budget.
// It executes html/template, whose field and method lookups
// (reflect.Value.MethodByName with names known at run time only) make the
// linker keep every exported method of every type the binary holds, the
// AWS SDK's included: about 10 MiB more than the others, which do not
// execute templates (docs/console.md). Only the console pays it.
const (
	maxConsoleBytes = 25 << 20
	maxConsoleRatio = 4.2
)

// maxSizeRatio bounds a function binary against the empty aws-lambda-go
// function built the same way in the same run.
const maxSizeRatio = 2.5

// healthzEvent is an HTTP API request for GET /healthz.
func healthzEvent() []byte {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: "/healthz",
		Headers: map[string]string{"host": "api.example.com"}}
	ev.RequestContext.Stage = "$default"
	ev.RequestContext.RequestID = "cold-start"
	ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = "GET", "/healthz"
	b, _ := json.Marshal(ev)
	return b
}

// coldStart starts bin under a fresh Lambda Runtime API and returns the
// time from the process start to its answer to payload.
func coldStart(tb testing.TB, bin string, env []string, payload []byte) time.Duration {
	tb.Helper()
	api := platformtest.NewLambdaAPI(platformtest.LambdaOptions{})
	defer api.Close()
	cmd := exec.Command(bin)
	cmd.Dir, cmd.Env = filepath.Dir(bin), append(slices.Clone(env), "AWS_LAMBDA_RUNTIME_API="+api.Addr())
	var out lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	resp, err := api.Invoke(ctx, payload)
	elapsed := time.Since(start)
	if err != nil || resp.Error != nil || !strings.Contains(string(resp.Payload), `200`) && string(resp.Payload) != "{}" {
		tb.Fatalf("first invocation: %v %v %s\n%s", err, resp.Error, resp.Payload, out.String())
	}
	return elapsed
}

// BenchmarkColdStart measures each function binary's cold start: from the
// process start to its first answer (GET /healthz) under the emulated
// Lambda Runtime API, with a bbolt store, next to an empty aws-lambda-go
// function built with the same flags. It reports the median ms/start and
// the binary's MB, and logs the table of docs/deploy.md (with -v).
//
//	go test -run '^$' -bench ColdStart -benchtime 30x -v ./deploy
func BenchmarkColdStart(b *testing.B) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	env := functionEnv(fake, boltEnv(b))
	type result struct {
		ms, mb float64
	}
	results := map[string]result{}
	names := append([]string{"emptyfn"}, functions...)
	for _, fn := range names {
		b.Run(fn, func(b *testing.B) {
			bin := binary(b, fn)
			fi, err := os.Stat(bin)
			if err != nil {
				b.Fatal(err)
			}
			payload := healthzEvent()
			if fn == "emptyfn" {
				payload = []byte("{}")
			}
			coldStart(b, bin, env, payload) // the page cache, the bbolt file
			var starts []time.Duration
			for b.Loop() {
				starts = append(starts, coldStart(b, bin, env, payload))
			}
			slices.Sort(starts)
			median := starts[len(starts)/2]
			r := result{ms: float64(median.Microseconds()) / 1000, mb: float64(fi.Size()) / (1 << 20)}
			results[fn] = r
			b.ReportMetric(r.ms, "ms/start")
			b.ReportMetric(r.mb, "MiB")
		})
	}
	base, ok := results["emptyfn"]
	if !ok {
		return
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| binary | size (MB) | cold start (ms) | vs empty |\n|---|---|---|---|\n")
	for _, fn := range names {
		if r, ok := results[fn]; ok {
			fmt.Fprintf(&table, "| %s | %.1f | %.1f | %.1fx |\n", fn, r.mb, r.ms, r.ms/base.ms)
		}
	}
	b.Log(table.String())
}
