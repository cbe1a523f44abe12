package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/platform"
)

// TestTemplateLogging checks that every function writes JSON lines to its
// own log group, kept LogRetentionInDays.
func TestTemplateLogging(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	for _, fn := range functionDirs(t) {
		id := logicalID(fn)
		lc := path(doc, "Resources", id, "Properties", "LoggingConfig")
		if got, want := fmt.Sprint(lc), "map[LogFormat:JSON LogGroup:map[Ref:"+logGroupID(id)+"]]"; got != want {
			t.Errorf("%s LoggingConfig: got %s, want %s", id, got, want)
		}
		lg := path(doc, "Resources", logGroupID(id))
		if str(path(lg, "Type")) != "AWS::Logs::LogGroup" || fmt.Sprint(path(lg, "Properties", "RetentionInDays")) != "map[Ref:LogRetentionInDays]" {
			t.Errorf("%s: want an AWS::Logs::LogGroup with RetentionInDays !Ref LogRetentionInDays, got %v", logGroupID(id), lg)
		}
	}
	if got := str(path(doc, "Parameters", "LogRetentionInDays", "Type")); got != "Number" {
		t.Errorf("LogRetentionInDays: Type %q, want Number", got)
	}
}

func TestTemplateTracing(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	if got := fmt.Sprint(path(doc, "Globals", "Function", "Tracing")); got != "map[Ref:Tracing]" {
		t.Errorf("Globals.Function.Tracing: got %s, want !Ref Tracing", got)
	}
	if got := fmt.Sprint(path(doc, "Parameters", "Tracing", "AllowedValues")); got != "[Active PassThrough]" {
		t.Errorf("Tracing AllowedValues: got %s, want [Active PassThrough]", got)
	}
	for _, fn := range functionDirs(t) {
		arns := fmt.Sprint(path(doc, "Resources", roleID(logicalID(fn)), "Properties", "ManagedPolicyArns"))
		if !strings.Contains(arns, "map[Fn::If:[TracingActive map[Ref:TracingPolicy] map[Ref:AWS::NoValue]]]") {
			t.Errorf("%s: ManagedPolicyArns %s, want TracingPolicy when TracingActive", roleID(logicalID(fn)), arns)
		}
	}
}

// TestTemplateAlarms checks that the alarms watch every function's errors
// and throttles, the leads and shard DLQs and the leads batches' failures, and notify
// AlarmTopicArn when it is set.
func TestTemplateAlarms(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	alarms := resourcesOfType(doc, "AWS::CloudWatch::Alarm")
	watched := map[string]bool{}
	for id, a := range alarms {
		p := path(a, "Properties")
		for _, key := range []string{"AlarmActions", "OKActions"} {
			if got := fmt.Sprint(path(p, key)); got != "map[Fn::If:[HasAlarmTopic [map[Ref:AlarmTopicArn]] map[Ref:AWS::NoValue]]]" {
				t.Errorf("%s %s: got %s, want !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]", id, key, got)
			}
		}
		dims, _ := path(p, "Dimensions").([]any)
		var on []string
		for _, d := range dims {
			on = append(on, str(path(d, "Name"))+"="+refTo(path(d, "Value")))
		}
		watched[str(path(p, "Namespace"))+"/"+str(path(p, "MetricName"))+" "+strings.Join(on, ",")] = true
	}
	var want []string
	for _, fn := range functionDirs(t) {
		for _, m := range []string{"Errors", "Throttles"} {
			want = append(want, "AWS/Lambda/"+m+" FunctionName="+logicalID(fn))
		}
	}
	for _, q := range []string{"LeadsQueue", "BatchShardQueue"} {
		dlq := refTo(path(doc, "Resources", q, "Properties", "RedrivePolicy", "deadLetterTargetArn"))
		want = append(want, "AWS/SQS/ApproximateNumberOfMessagesVisible QueueName="+dlq)
	}
	for _, w := range want {
		if !watched[w] {
			t.Errorf("no alarm on %s", w)
		}
	}
	if got := fmt.Sprint(path(doc, "Conditions", "HasAlarmTopic")); got != "map[Fn::Not:[map[Fn::Equals:[map[Ref:AlarmTopicArn] ]]]]" {
		t.Errorf("HasAlarmTopic: got %s, want !Not [!Equals [!Ref AlarmTopicArn, \"\"]]", got)
	}
	if got := path(doc, "Parameters", "AlarmTopicArn", "Default"); got != "" {
		t.Errorf("AlarmTopicArn default: got %v, want \"\" (no actions)", got)
	}

	// The batch failures: a metric filter on the leads function's log group
	// counts the failed messages of its invocation lines, and an alarm reads
	// that metric.
	var filters int
	for id, f := range resourcesOfType(doc, "AWS::Logs::MetricFilter") {
		p := path(f, "Properties")
		if refTo(path(p, "LogGroupName")) != logGroupID(eventsFunction) {
			continue
		}
		filters++
		if err := checkInvocationFilter(str(path(p, "FilterPattern"))); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		mt, _ := path(p, "MetricTransformations").([]any)
		if len(mt) != 1 || str(path(mt[0], "MetricValue")) != "$.failed" {
			t.Fatalf("%s: MetricTransformations %v, want one counting $.failed", id, mt)
		}
		ns, name := path(mt[0], "MetricNamespace"), str(path(mt[0], "MetricName"))
		found := false
		for _, a := range alarms {
			ap := path(a, "Properties")
			found = found || fmt.Sprint(path(ap, "Namespace")) == fmt.Sprint(ns) && str(path(ap, "MetricName")) == name
		}
		if !found {
			t.Errorf("%s: no alarm reads %v %s", id, ns, name)
		}
	}
	if filters != 1 {
		t.Errorf("%d metric filters on %s, want 1 (the batch failures)", filters, logGroupID(eventsFunction))
	}
}

// checkInvocationFilter evaluates the batch-failure filter on the lines
// the leads function really writes: shared/platform's invocation line,
// through boot's JSON logger, for an SQS batch with two failed messages of
// three and for one without failures. The filter must match the first,
// with $.failed 2, and not the second.
func checkInvocationFilter(pattern string) error {
	match, err := parseFilterPattern(pattern)
	if err != nil {
		return err
	}
	for _, failed := range []int{2, 0} {
		line, err := invocationLine(failed)
		if err != nil {
			return err
		}
		if got := match(line); got != (failed > 0) {
			return fmt.Errorf("%q matches %v the line of a batch with %d failed: %s", pattern, got, failed, line)
		}
		if got := fmt.Sprint(line["failed"]); got != strconv.Itoa(failed) {
			return fmt.Errorf("$.failed is %s in the line of a batch with %d failed: %v", got, failed, line)
		}
	}
	return nil
}

// invocationLine runs the platform's Lambda adapter on an SQS batch of three
// messages, failed of which the core reports as failed, and returns the
// invocation line it logs.
func invocationLine(failed int) (map[string]any, error) {
	f, err := os.CreateTemp("", "wxnotify-log-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := platform.Handlers{Events: func(_ context.Context, evs []platform.Event) ([]string, error) {
		var ids []string
		for _, e := range evs[:failed] {
			ids = append(ids, e.ID)
		}
		return ids, nil
	}}
	lambda := platform.NewLambda(h, platform.Options{Function: "leads", Logger: boot.NewLogger(f, "info")})
	var batch events.SQSEvent
	for i := range 3 {
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: fmt.Sprint("m", i), Body: "{}", EventSource: "aws:sqs"})
	}
	payload, _ := json.Marshal(batch)
	if _, err := lambda.Invoke(context.Background(), payload); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	for l := range strings.Lines(string(b)) {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err == nil && line["msg"] == "invocation" {
			return line, nil
		}
	}
	return nil, fmt.Errorf("no invocation line in %q", b)
}

var filterTermRe = regexp.MustCompile(`^\$\.(\w+) (=|!=|>|<) ("[^"]*"|-?[0-9.]+)$`)

// parseFilterPattern parses the part of CloudWatch Logs' JSON filter
// syntax the template uses - "{ T && T ... }", each T "$.field OP value"
// with OP =, !=, > or < and value a quoted string or a number - into a
// matcher. Other syntax is an error, so that the test cannot pass a
// pattern it does not understand.
func parseFilterPattern(pattern string) (func(map[string]any) bool, error) {
	inner, okOpen := strings.CutPrefix(pattern, "{ ")
	inner, okClose := strings.CutSuffix(inner, " }")
	if !okOpen || !okClose {
		return nil, fmt.Errorf("%q: want { $.field OP value && ... }", pattern)
	}
	var terms []func(map[string]any) bool
	for term := range strings.SplitSeq(inner, " && ") {
		m := filterTermRe.FindStringSubmatch(term)
		if m == nil {
			return nil, fmt.Errorf("%q: term %q is not $.field OP value", pattern, term)
		}
		field, op, lit := m[1], m[2], m[3]
		if s, isStr := strings.CutPrefix(lit, `"`); isStr {
			s = strings.TrimSuffix(s, `"`)
			if op != "=" && op != "!=" {
				return nil, fmt.Errorf("%q: %s compares a string", pattern, op)
			}
			terms = append(terms, func(l map[string]any) bool { v, ok := l[field].(string); return ok && (v == s) == (op == "=") })
			continue
		}
		n, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return nil, err
		}
		terms = append(terms, func(l map[string]any) bool {
			v, ok := l[field].(float64)
			switch op {
			case "=":
				return ok && v == n
			case "!=":
				return ok && v != n
			case ">":
				return ok && v > n
			}
			return ok && v < n
		})
	}
	return func(l map[string]any) bool {
		for _, t := range terms {
			if !t(l) {
				return false
			}
		}
		return true
	}, nil
}

func TestFilterPattern(t *testing.T) {
	line := map[string]any{"msg": "invocation", "kind": "events", "failed": 2.0}
	tests := []struct {
		pattern string
		match   bool
	}{
		{`{ $.msg = "invocation" && $.failed > 0 }`, true},
		{`{ $.msg = "invocation" && $.failed > 2 }`, false},
		{`{ $.kind != "events" }`, false},
		{`{ $.failed = 2 }`, true},
		{`{ $.missing = "x" }`, false},
	}
	for _, tt := range tests {
		match, err := parseFilterPattern(tt.pattern)
		if err != nil || match(line) != tt.match {
			t.Errorf("%s: got %v (%v), want %v", tt.pattern, err == nil && match(line), err, tt.match)
		}
	}
	for _, bad := range []string{`$.failed > 0`, `{ $.failed > 0 || $.x = 1 }`, `{ $.a > "x" }`, `{ ERROR }`} {
		if _, err := parseFilterPattern(bad); err == nil {
			t.Errorf("%s: got no error", bad)
		}
	}
	if err := checkInvocationFilter(`{ $.msg = "invocation" && $.kind = "tick" && $.failed > 0 }`); err == nil {
		t.Error("a filter on the tick's lines: got no error")
	}
}

func TestTemplateBatchConcurrency(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	got := fmt.Sprint(path(doc, "Resources", tickFunction, "Properties", "ReservedConcurrentExecutions"))
	if want := "map[Fn::If:[ReserveBatchConcurrency map[Ref:BatchConcurrency] map[Ref:AWS::NoValue]]]"; got != want {
		t.Errorf("%s ReservedConcurrentExecutions: got %s, want %s", tickFunction, got, want)
	}
	if got := str(path(doc, "Parameters", "BatchConcurrency", "Type")); got != "Number" {
		t.Errorf("BatchConcurrency: Type %q, want Number", got)
	}
}

// TestTemplateFrontDoor checks both front doors: the HTTP API's resources
// and outputs exist only with FrontDoor=HttpApi, every function's URL and
// its output only with FrontDoor=FunctionUrls, and the push URL and the
// request domains are given either way.
func TestTemplateFrontDoor(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	if got := fmt.Sprint(path(doc, "Parameters", "FrontDoor", "AllowedValues")); got != "[HttpApi FunctionUrls]" {
		t.Errorf("FrontDoor AllowedValues: got %s, want [HttpApi FunctionUrls]", got)
	}
	res := path(doc, "Resources").(map[string]any)
	for id, r := range res {
		typ, cond := str(path(r, "Type")), str(path(r, "Condition"))
		if strings.HasPrefix(typ, "AWS::ApiGatewayV2::") && cond != "UseHttpApi" {
			t.Errorf("%s (%s): Condition %q, want UseHttpApi", id, typ, cond)
		}
		if typ == "AWS::Lambda::Url" && cond != "UseFunctionUrls" {
			t.Errorf("%s: Condition %q, want UseFunctionUrls", id, cond)
		}
	}
	outputs := path(doc, "Outputs").(map[string]any)
	if str(path(outputs, "ApiUrl", "Condition")) != "UseHttpApi" {
		t.Error("Outputs.ApiUrl: want Condition UseHttpApi")
	}
	for _, fn := range functionDirs(t) {
		base := strings.TrimSuffix(logicalID(fn), "Function")
		url := res[base+"FunctionUrl"]
		if str(path(url, "Properties", "AuthType")) != "NONE" || refTo(path(url, "Properties", "TargetFunctionArn")) != logicalID(fn) {
			t.Errorf("%sFunctionUrl: want a Function URL with AuthType NONE (wxnotify authenticates) for %s", base, logicalID(fn))
		}
		var actions []string
		for id, p := range resourcesOfType(doc, "AWS::Lambda::Permission") {
			pp := path(p, "Properties")
			if refTo(path(pp, "FunctionName")) == logicalID(fn) && str(path(pp, "Principal")) == "*" {
				actions = append(actions, str(path(pp, "Action")))
				if str(path(p, "Condition")) != "UseFunctionUrls" {
					t.Errorf("%s: Condition %q, want UseFunctionUrls", id, path(p, "Condition"))
				}
			}
		}
		slices.Sort(actions)
		if !slices.Equal(actions, []string{"lambda:InvokeFunction", "lambda:InvokeFunctionUrl"}) {
			t.Errorf("%s: public permissions %v, want lambda:InvokeFunction and lambda:InvokeFunctionUrl (both since October 2025)", logicalID(fn), actions)
		}
		out := outputs[base+"Url"]
		if str(path(out, "Condition")) != "UseFunctionUrls" || fmt.Sprint(path(out, "Value")) != "map[Fn::GetAtt:["+base+"FunctionUrl FunctionUrl]]" {
			t.Errorf("Outputs.%sUrl: got %v, want !GetAtt %sFunctionUrl.FunctionUrl with Condition UseFunctionUrls", base, out, base)
		}
	}
	push, _ := path(outputs, "WeChatPushUrl", "Value", "Fn::If").([]any)
	if len(push) != 3 || str(push[0]) != "UseHttpApi" ||
		!strings.HasSuffix(str(path(push[1], "Fn::Sub")), "/wechat/push") || str(path(push[2], "Fn::Sub")) != "${WxpushFunctionUrl.FunctionUrl}wechat/push" {
		t.Errorf("Outputs.WeChatPushUrl: got %v, want the API's or wxpush's URL followed by wechat/push", push)
	}
	for _, name := range []string{"MiniProgramRequestDomains", "WeChatPushUrl", "SendFunctionArn", "LeadsQueueUrl"} {
		if out := outputs[name]; out == nil || path(out, "Condition") != nil {
			t.Errorf("Outputs.%s: want it on both front doors", name)
		}
	}
}

// TestTemplateOutputsResolved resolves the URL outputs for both front
// doors, as CloudFormation would, and checks what a user pastes.
func TestTemplateOutputsResolved(t *testing.T) {
	doc, err := parseYAML(readTemplateSource(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, params := range deployParameters {
		r, err := newResolver(doc, params)
		if err != nil {
			t.Fatal(err)
		}
		outputs := map[string]string{}
		for name, o := range path(doc, "Outputs").(map[string]any) {
			if c := str(path(o, "Condition")); c != "" && !r.conds[c] {
				continue
			}
			v, err := r.value(path(o, "Value"))
			if err != nil {
				t.Fatalf("Outputs.%s: %v", name, err)
			}
			outputs[name] = fmt.Sprint(v)
		}
		urls := params["FrontDoor"] == "FunctionUrls"
		want := map[string]string{
			"WeChatPushUrl":             "https://ref-HttpApi.execute-api.cn-north-1.amazonaws.com.cn/wechat/push",
			"MiniProgramRequestDomains": "https://ref-HttpApi.execute-api.cn-north-1.amazonaws.com.cn",
			"ApiUrl":                    "https://ref-HttpApi.execute-api.cn-north-1.amazonaws.com.cn",
		}
		if urls {
			want = map[string]string{
				"WeChatPushUrl":             "https://WxpushFunctionUrl-FunctionUrl.invalid/wechat/push",
				"MiniProgramRequestDomains": "https://LoginFunctionUrl-FunctionUrl.invalid,https://ConsentFunctionUrl-FunctionUrl.invalid",
				"LoginUrl":                  "https://LoginFunctionUrl-FunctionUrl.invalid/",
			}
		}
		for name, w := range want {
			if outputs[name] != w {
				t.Errorf("parameters %d: Outputs.%s: got %q, want %q", i, name, outputs[name], w)
			}
		}
		if _, ok := outputs["ApiUrl"]; ok == urls {
			t.Errorf("parameters %d: ApiUrl present %v with FrontDoor %v", i, ok, params["FrontDoor"])
		}
	}
}
