package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxnotify/wxnotify/shared/trace/tracetest"
	"github.com/wxnotify/wxnotify/shared/wechat/wechattest"
)

// tracedEnv is a function's environment with tracing on, exporting to c.
func tracedEnv(tb testing.TB, fake *wechattest.Server, c *tracetest.Collector) []string {
	return append(functionEnv(fake, boltEnv(tb)), "OTEL_EXPORTER_OTLP_ENDPOINT="+c.URL())
}

// A function binary with OTEL_EXPORTER_OTLP_ENDPOINT set exports the span
// of its first request, flushed before it answers.
func TestTracedFunctionExports(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	c := tracetest.NewCollector()
	defer c.Close()
	coldStart(t, binary(t, "send"), tracedEnv(t, fake, c), healthzEvent())
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	spans := c.Named("GET /healthz")
	if len(spans) != 1 {
		t.Fatalf("spans: %+v", c.Spans())
	}
	s := spans[0]
	if s.Kind != 2 || s.Resource["faas.name"] != "send" || s.Resource["service.name"] != "wxnotify" ||
		s.Attrs["http.response.status_code"] != int64(200) {
		t.Errorf("span: %+v", s)
	}
}

// BenchmarkColdStartTraced is BenchmarkColdStart with tracing on (an
// OTLP/HTTP collector on localhost): the first answer then includes the
// export of its span. It logs the table of docs/observability.md (with -v).
//
//	go test -run '^$' -bench ColdStartTraced -benchtime 30x -v ./deploy
func BenchmarkColdStartTraced(b *testing.B) {
	fake := wechattest.NewServer(wechattest.Options{})
	defer fake.Close()
	c := tracetest.NewCollector()
	defer c.Close()
	off := functionEnv(fake, boltEnv(b))
	on := tracedEnv(b, fake, c)
	median := func(b *testing.B, bin string, env []string, payload []byte) float64 {
		coldStart(b, bin, env, payload) // the page cache, the bbolt file
		var starts []time.Duration
		for b.Loop() {
			starts = append(starts, coldStart(b, bin, env, payload))
		}
		slices.Sort(starts)
		return float64(starts[len(starts)/2].Microseconds()) / 1000
	}
	var empty float64
	b.Run("emptyfn", func(b *testing.B) {
		empty = median(b, binary(b, "emptyfn"), off, []byte("{}"))
		b.ReportMetric(empty, "ms/start")
	})
	type result struct{ off, on float64 }
	results := map[string]result{}
	for _, fn := range functions {
		for _, traced := range []bool{false, true} {
			name, env := fn+"/off", off
			if traced {
				name, env = fn+"/on", on
			}
			b.Run(name, func(b *testing.B) {
				ms := median(b, binary(b, fn), env, healthzEvent())
				r := results[fn]
				if traced {
					r.on = ms
				} else {
					r.off = ms
				}
				results[fn] = r
				b.ReportMetric(ms, "ms/start")
			})
		}
	}
	if empty == 0 || len(c.Spans()) == 0 {
		return
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n| function | tracing off (ms) | vs empty | tracing on (ms) | vs empty |\n|---|---|---|---|---|\n")
	for _, fn := range functions {
		if r, ok := results[fn]; ok {
			fmt.Fprintf(&table, "| %s | %.1f | %.1fx | %.1f | %.1fx |\n", fn, r.off, r.off/empty, r.on, r.on/empty)
		}
	}
	b.Log(table.String())
}
