package observe

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of the EMF lines.
const Namespace = "wxnotify"

// Limits of a LogSink's folding of Aggregate events: it writes what it
// holds when it holds maxValues values (EMF takes at most 100 values per
// metric) or the oldest is maxAge old, and before any other line.
const (
	maxValues = 100
	maxAge    = 10 * time.Second
)

// LogSink writes each event as one JSON line: CloudWatch Embedded Metric
// Format (EMF) on Lambda, plain JSON (Lines) on SCF for a CLS metric
// extraction. Aggregate events (store operations, WeChat calls) of the
// same labels are folded into one line whose histogram value is the array
// of their observations.
type LogSink struct {
	mu      sync.Mutex
	w       io.Writer
	emf     bool
	now     func() time.Time
	held    map[string]*heldEvent
	order   []string
	nValues int
	oldest  time.Time
}

type heldEvent struct {
	e      Event
	values map[string][]float64
}

// EMF returns a LogSink writing CloudWatch Embedded Metric Format lines to
// w (the function's log stream: CloudWatch extracts the metrics itself, no
// AWS API is called).
func EMF(w io.Writer) *LogSink { return newLogSink(w, true) }

// Lines returns a LogSink writing plain JSON lines to w.
func Lines(w io.Writer) *LogSink { return newLogSink(w, false) }

func newLogSink(w io.Writer, emf bool) *LogSink {
	return &LogSink{w: w, emf: emf, now: time.Now, held: map[string]*heldEvent{}}
}

// Record implements Sink.
func (s *LogSink) Record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.Aggregate {
		s.flushLocked()
		s.write(e, nil)
		return
	}
	key := heldKey(e)
	h := s.held[key]
	if h == nil {
		h = &heldEvent{e: e, values: map[string][]float64{}}
		s.held[key] = h
		s.order = append(s.order, key)
	}
	if s.nValues == 0 {
		s.oldest = s.now()
	}
	for _, sm := range e.Samples {
		h.values[sm.Metric] = append(h.values[sm.Metric], sm.Value)
		s.nValues++
	}
	if s.nValues >= maxValues || s.now().Sub(s.oldest) >= maxAge {
		s.flushLocked()
	}
}

// Flush writes the folded events it holds.
func (s *LogSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *LogSink) flushLocked() {
	for _, k := range s.order {
		h := s.held[k]
		s.write(h.e, h.values)
	}
	clear(s.held)
	s.order, s.nValues = s.order[:0], 0
}

func heldKey(e Event) string {
	var b strings.Builder
	b.WriteString(e.Msg)
	for _, l := range e.Labels {
		b.WriteString("\x00" + l.Name + "=" + l.Value)
	}
	return b.String()
}

// write writes e's line; values, when set, are its samples' folded values.
func (s *LogSink) write(e Event, values map[string][]float64) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	field := func(k string, v any) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kj, _ := json.Marshal(k)
		vj, err := json.Marshal(v)
		if err != nil {
			vj = []byte(`null`)
		}
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	t := e.Time
	if t.IsZero() {
		t = s.now()
	}
	if s.emf {
		field("_aws", emfMeta(e, t))
	}
	field("time", t.UTC().Format(time.RFC3339Nano))
	field("level", "INFO")
	field("msg", e.Msg)
	for _, l := range e.Labels {
		field(l.Name, l.Value)
	}
	seen := map[string]bool{}
	for _, sm := range e.Samples {
		if seen[sm.Metric] {
			continue
		}
		seen[sm.Metric] = true
		if vs, ok := values[sm.Metric]; ok {
			field(sm.Metric, vs)
		} else {
			field(sm.Metric, sm.Value)
		}
	}
	for _, f := range e.Fields {
		field(f.Key, f.Value)
	}
	b.WriteString("}\n")
	_, _ = s.w.Write(b.Bytes())
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// emfMeta is the _aws member of e's line: one directive per dimension set
// its samples' specs use.
func emfMeta(e Event, t time.Time) emfMetadata {
	m := emfMetadata{Timestamp: t.UnixMilli()}
	index := map[string]int{}
	seen := map[string]bool{}
	for _, sm := range e.Samples {
		spec, ok := SpecOf(sm.Metric)
		if !ok || seen[sm.Metric] {
			continue
		}
		seen[sm.Metric] = true
		key := strings.Join(spec.Labels, ",")
		i, ok := index[key]
		if !ok {
			i = len(m.CloudWatchMetrics)
			index[key] = i
			m.CloudWatchMetrics = append(m.CloudWatchMetrics, emfDirective{Namespace: Namespace,
				Dimensions: [][]string{spec.Labels}})
		}
		d := &m.CloudWatchMetrics[i]
		d.Metrics = append(d.Metrics, emfMetric{Name: spec.Name, Unit: spec.Unit})
	}
	return m
}

// Tee returns a Sink recording every event to each of sinks.
func Tee(sinks ...Sink) Sink { return tee(sinks) }

type tee []Sink

func (t tee) Record(e Event) {
	for _, s := range t {
		s.Record(e)
	}
}

// Flush flushes the sinks that buffer.
func (t tee) Flush() {
	for _, s := range t {
		if f, ok := s.(Flusher); ok {
			f.Flush()
		}
	}
}
