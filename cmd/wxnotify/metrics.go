package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxnotify/wxnotify/shared/observe"
)

// promSink is the metrics sink of `wxnotify dev`: the metric set of
// package observe as Prometheus counters and histograms, served at
// /metrics. It lives here, not in shared/observe, so that the function
// binaries do not link the Prometheus client.
type promSink struct {
	reg        *prometheus.Registry
	counters   map[string]*prometheus.CounterVec
	histograms map[string]*prometheus.HistogramVec
}

var _ observe.Sink = (*promSink)(nil)

// newPromSink registers every metric of observe.Specs, and the Go and
// process collectors, on a registry of its own.
func newPromSink() (*promSink, error) {
	p := &promSink{reg: prometheus.NewRegistry(), counters: map[string]*prometheus.CounterVec{},
		histograms: map[string]*prometheus.HistogramVec{}}
	cs := []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for _, s := range observe.Specs {
		switch s.Kind {
		case observe.Counter:
			c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: s.Name, Help: s.Help}, s.Labels)
			p.counters[s.Name] = c
			cs = append(cs, c)
		case observe.Histogram:
			h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: s.Name, Help: s.Help,
				Buckets: prometheus.DefBuckets}, s.Labels)
			p.histograms[s.Name] = h
			cs = append(cs, h)
		}
	}
	for _, c := range cs {
		if err := p.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return p, nil
}

// Record implements observe.Sink: each sample adds to its counter or is
// observed by its histogram, with the event's values of the metric's
// labels.
func (p *promSink) Record(e observe.Event) {
	for _, sm := range e.Samples {
		spec, ok := observe.SpecOf(sm.Metric)
		if !ok {
			continue
		}
		values := make([]string, len(spec.Labels))
		for i, l := range spec.Labels {
			values[i] = e.Label(l)
		}
		if c := p.counters[sm.Metric]; c != nil {
			c.WithLabelValues(values...).Add(sm.Value)
		} else if h := p.histograms[sm.Metric]; h != nil {
			h.WithLabelValues(values...).Observe(sm.Value)
		}
	}
}

// handler serves the registry in Prometheus's text format.
func (p *promSink) handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{})
}
