package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"github.com/awslabs/goformation/v7/cloudformation/lambda"
)

// newerProperties are the properties template.yaml uses that CloudFormation
// and SAM accept but goformation v7.14.9's schema predates, by resource
// type, with the goformation type each value is decoded as (strictly). They
// are checked that way and removed before goformation decodes the
// resource, which refuses unknown properties.
var newerProperties = map[string]map[string]func() any{
	// SAM passes LoggingConfig to AWS::Lambda::Function unchanged.
	"AWS::Serverless::Function": {"LoggingConfig": func() any { return new(lambda.Function_LoggingConfig) }},
	// Public Function URLs need lambda:InvokeFunction with this flag since October 2025.
	"AWS::Lambda::Permission": {"InvokedViaFunctionUrl": func() any { return new(bool) }},
}

// pseudoParameters are the values the resolver gives AWS's pseudo
// parameters: an aws-cn stack, so that an ARN or URL that does not use
// them stands out.
var pseudoParameters = map[string]any{
	"AWS::AccountId": "123456789012", "AWS::Partition": "aws-cn", "AWS::Region": "cn-north-1",
	"AWS::StackName": "wxnotify", "AWS::URLSuffix": "amazonaws.com.cn",
	"AWS::StackId": "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/wxnotify/0",
}

// resolver evaluates a template's intrinsic functions for one set of
// parameter values, as CloudFormation would at deploy time: Ref of a
// parameter is its value, !If takes the branch its condition picks,
// AWS::NoValue removes the property. Ref and !GetAtt of resources, which
// exist only once deployed, become placeholder strings; referring to a
// resource, parameter or condition the template does not define is an
// error.
//
// goformation's own intrinsic processing is not used: it resolves !GetAtt
// and Refs of resources to null (a typo in a name passes), evaluates !If
// only with EvaluateConditions, which replaces every resource that has a
// Condition with that condition's value, and it cannot take a parameter
// set per run. goformation parses the resolved template.
type resolver struct {
	resources map[string]any
	params    map[string]any
	condDefs  map[string]any
	conds     map[string]bool
}

// noValue is the value of AWS::NoValue: the enclosing key or element is dropped.
type noValue struct{}

func newResolver(doc map[string]any, overrides map[string]any) (*resolver, error) {
	r := &resolver{params: map[string]any{}, conds: map[string]bool{}}
	r.resources, _ = doc["Resources"].(map[string]any)
	r.condDefs, _ = doc["Conditions"].(map[string]any)
	params, _ := doc["Parameters"].(map[string]any)
	for name, p := range params {
		if v, ok := overrides[name]; ok {
			r.params[name] = v
		} else if v, ok := p.(map[string]any)["Default"]; ok {
			r.params[name] = v
		} else {
			return nil, fmt.Errorf("parameter %s has no default: give it a value", name)
		}
		if allowed, ok := path(p, "AllowedValues").([]any); ok && !slices.ContainsFunc(allowed, func(a any) bool {
			return fmt.Sprint(a) == fmt.Sprint(r.params[name])
		}) {
			return nil, fmt.Errorf("parameter %s: %v is not one of %v", name, r.params[name], allowed)
		}
		if pattern, ok := path(p, "AllowedPattern").(string); ok {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: AllowedPattern: %w", name, err)
			}
			if !re.MatchString(fmt.Sprint(r.params[name])) {
				return nil, fmt.Errorf("parameter %s: %q does not match %s", name, r.params[name], pattern)
			}
		}
	}
	for name := range overrides {
		if _, ok := params[name]; !ok {
			return nil, fmt.Errorf("no parameter %s", name)
		}
	}
	for name := range r.condDefs {
		if _, err := r.condition(name, nil); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *resolver) condition(name string, seen []string) (bool, error) {
	if v, ok := r.conds[name]; ok {
		return v, nil
	}
	def, ok := r.condDefs[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	if slices.Contains(seen, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	v, err := r.boolean(def, append(seen, name))
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	r.conds[name] = v
	return v, nil
}

func (r *resolver) boolean(v any, seen []string) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("%v is not a condition function", v)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			return r.condition(name, seen)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals needs 2 values, got %v", arg)
			}
			a, err := r.value(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.value(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not needs 1 condition, got %v", arg)
			}
			b, err := r.boolean(args[0], seen)
			return !b, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			out := and
			for _, a := range args {
				b, err := r.boolean(a, seen)
				if err != nil {
					return false, err
				}
				if and {
					out = out && b
				} else {
					out = out || b
				}
			}
			return out, nil
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	panic("unreachable")
}

// value resolves v; the result is noValue{} for AWS::NoValue.
func (r *resolver) value(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		out := []any{}
		for _, e := range v {
			x, err := r.value(e)
			if err != nil {
				return nil, err
			}
			if _, drop := x.(noValue); !drop {
				out = append(out, x)
			}
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for fn, arg := range v {
				if x, ok, err := r.intrinsic(fn, arg); ok || err != nil {
					return x, err
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			x, err := r.value(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := x.(noValue); !drop {
				out[k] = x
			}
		}
		return out, nil
	}
	return v, nil
}

var subVarRe = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// intrinsic evaluates {fn: arg}; ok is false when fn is not an intrinsic function.
func (r *resolver) intrinsic(fn string, arg any) (out any, ok bool, err error) {
	str := func(v any) (string, error) {
		x, err := r.value(v)
		if err != nil {
			return "", err
		}
		s, isStr := x.(string)
		if !isStr {
			return "", fmt.Errorf("%s: %v is not a string", fn, x)
		}
		return s, nil
	}
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		x, err := r.ref(name)
		return x, true, err
	case "Fn::GetAtt":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, true, fmt.Errorf("Fn::GetAtt needs [resource, attribute], got %v", arg)
		}
		x, err := r.getAtt(fmt.Sprint(parts[0]), fmt.Sprint(parts[1]))
		return x, true, err
	case "Fn::Sub":
		s, vars := arg, map[string]any{}
		if list, isList := arg.([]any); isList && len(list) == 2 {
			s = list[0]
			m, _ := list[1].(map[string]any)
			for k, e := range m {
				if vars[k], err = r.value(e); err != nil {
					return nil, true, err
				}
			}
		}
		src, isStr := s.(string)
		if !isStr {
			return nil, true, fmt.Errorf("Fn::Sub: %v is not a string", s)
		}
		var subErr error
		res := subVarRe.ReplaceAllStringFunc(src, func(m string) string {
			name := m[2 : len(m)-1]
			var x any
			var err error
			if v, isVar := vars[name]; isVar {
				x = v
			} else if res, attr, isAtt := strings.Cut(name, "."); isAtt {
				x, err = r.getAtt(res, attr)
			} else {
				x, err = r.ref(name)
			}
			if err != nil && subErr == nil {
				subErr = fmt.Errorf("Fn::Sub %q: %w", src, err)
			}
			return fmt.Sprint(x)
		})
		return res, true, subErr
	case "Fn::Join":
		args, _ := arg.([]any)
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Join needs [delimiter, list], got %v", arg)
		}
		list, err := r.value(args[1])
		if err != nil {
			return nil, true, err
		}
		items, _ := list.([]any)
		var parts []string
		for _, it := range items {
			s, err := str(it)
			if err != nil {
				return nil, true, err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, fmt.Sprint(args[0])), true, nil
	case "Fn::Split":
		args, _ := arg.([]any)
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Split needs [delimiter, string], got %v", arg)
		}
		s, err := str(args[1])
		if err != nil {
			return nil, true, err
		}
		var out []any
		for _, p := range strings.Split(s, fmt.Sprint(args[0])) {
			out = append(out, p)
		}
		return out, true, nil
	case "Fn::Select":
		args, _ := arg.([]any)
		if len(args) != 2 {
			return nil, true, fmt.Errorf("Fn::Select needs [index, list], got %v", arg)
		}
		i, isInt := args[0].(int)
		list, err := r.value(args[1])
		if err != nil {
			return nil, true, err
		}
		items, _ := list.([]any)
		if !isInt || i < 0 || i >= len(items) {
			return nil, true, fmt.Errorf("Fn::Select: index %v out of %v", args[0], items)
		}
		return items[i], true, nil
	case "Fn::If":
		args, _ := arg.([]any)
		if len(args) != 3 {
			return nil, true, fmt.Errorf("Fn::If needs [condition, then, else], got %v", arg)
		}
		c, err := r.condition(fmt.Sprint(args[0]), nil)
		if err != nil {
			return nil, true, err
		}
		if c {
			x, err := r.value(args[1])
			return x, true, err
		}
		x, err := r.value(args[2])
		return x, true, err
	}
	if strings.HasPrefix(fn, "Fn::") {
		return nil, true, fmt.Errorf("%s: the resolver of deploy/typed_test.go does not evaluate it yet", fn)
	}
	return nil, false, nil
}

func (r *resolver) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue{}, nil
	}
	if v, ok := pseudoParameters[name]; ok {
		return v, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if _, ok := r.resources[name]; ok {
		return "ref-" + name, nil
	}
	return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func (r *resolver) getAtt(resource, attr string) (any, error) {
	if _, ok := r.resources[resource]; !ok {
		return nil, fmt.Errorf("GetAtt %s.%s: no such resource", resource, attr)
	}
	// A URL-shaped placeholder, which Fn::Split and Fn::Select can take apart.
	return "https://" + resource + "-" + attr + ".invalid/", nil
}

// checkTyped resolves a template for one set of parameter values and
// decodes it into goformation's typed resources, refusing unknown
// properties and values of the wrong type anywhere.
func checkTyped(src []byte, overrides map[string]any) error {
	doc, err := parseYAML(src)
	if err != nil {
		return err
	}
	r, err := newResolver(doc, overrides)
	if err != nil {
		return err
	}
	resolved := map[string]any{}
	for k, v := range doc {
		switch k {
		case "Resources", "Outputs", "Globals":
			if resolved[k], err = r.value(v); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		default:
			resolved[k] = v
		}
	}
	for _, section := range []string{"Resources", "Outputs"} {
		entries, _ := doc[section].(map[string]any)
		for id, e := range entries {
			if c, ok := path(e, "Condition").(string); ok {
				if _, err := r.condition(c, nil); err != nil {
					return fmt.Errorf("%s %s: %w", section, id, err)
				}
			}
		}
	}
	all := cloudformation.AllResources()
	resources, _ := resolved["Resources"].(map[string]any)
	for id, res := range resources {
		typ := str(path(res, "Type"))
		if _, ok := all[typ]; !ok {
			return fmt.Errorf("%s: goformation knows no resource type %q", id, typ)
		}
		props, _ := path(res, "Properties").(map[string]any)
		for name, typed := range newerProperties[typ] {
			v, ok := props[name]
			if !ok {
				continue
			}
			if err := decodeStrict(v, typed()); err != nil {
				return fmt.Errorf("%s (%s) %s: %w", id, typ, name, err)
			}
			delete(props, name)
		}
	}
	for id, res := range resources {
		if err := decodeStrict(map[string]any{id: res}, &cloudformation.Resources{}); err != nil {
			return fmt.Errorf("%s (%s): %w", id, str(path(res, "Type")), err)
		}
	}
	if err := decodeStrict(resolved, &cloudformation.Template{}); err != nil {
		return err
	}
	if g := path(resolved, "Globals", "Function"); g != nil {
		if err := decodeStrict(g, new(global.Function)); err != nil {
			return fmt.Errorf("Globals.Function: %w", err)
		}
	}
	return nil
}

// decodeStrict decodes v (maps and slices) into typed, refusing unknown fields.
func decodeStrict(v any, typed any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return decodeStrictJSON(b, typed)
}

func decodeStrictJSON(b []byte, typed any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(typed)
}

// deployParameters are parameter sets that together take every branch of
// the template's conditions.
var deployParameters = []map[string]any{
	{"WeChatAppId": "wx0123456789abcdef", "SecretArn": "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:wxnotify-AbCdEf"},
	{"WeChatAppId": "wx0123456789abcdef", "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:wxnotify-AbCdEf",
		"FrontDoor": "FunctionUrls", "Tracing": "Active", "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:wxnotify-alarms",
		"BatchConcurrency": 0, "LogRetentionInDays": 365, "WebhookEventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/crm"},
}

func readTemplateSource(tb testing.TB) []byte {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

// TestTemplateTyped decodes template.yaml, resolved for each of
// deployParameters, into goformation's CloudFormation and SAM types.
func TestTemplateTyped(t *testing.T) {
	src := readTemplateSource(t)
	for i, params := range deployParameters {
		if err := checkTyped(src, params); err != nil {
			t.Errorf("parameters %d %v: %v", i, params, err)
		}
	}
}

// TestTemplateTypedCatchesMistakes feeds checkTyped copies of template.yaml
// with one mistake each.
func TestTemplateTypedCatchesMistakes(t *testing.T) {
	src := string(readTemplateSource(t))
	tests := []struct {
		name, old, new, want string
	}{
		{"MisspeltGlobal", "    MemorySize: 128\n", "    MemorySze: 128\n", `unknown field "MemorySze"`},
		{"MisspeltFunctionProperty", "      Timeout: 30\n", "      Timout: 30\n", `unknown field "Timout"`},
		{"WrongTypeFunctionProperty", "      Timeout: 30\n", "      Timeout: thirty\n", "cannot unmarshal string"},
		{"MisspeltTableProperty", "      BillingMode: PAY_PER_REQUEST\n", "      BillingMod: PAY_PER_REQUEST\n", `unknown field "BillingMod"`},
		{"MisspeltNestedProperty", "PointInTimeRecoveryEnabled: true", "PointInTimeRecoveryEnable: true", `unknown field "PointInTimeRecoveryEnable"`},
		{"WrongTypeNestedProperty", "PointInTimeRecoveryEnabled: true", "PointInTimeRecoveryEnabled: [true]", "cannot unmarshal array"},
		{"MisspeltNewerProperty", "        LogFormat: JSON\n", "        LogFormt: JSON\n", `unknown field "LogFormt"`},
		{"WrongTypeNewerProperty", "InvokedViaFunctionUrl: true", "InvokedViaFunctionUrl: yes please", "cannot unmarshal string"},
		{"MisspeltResourceType", "Type: AWS::Lambda::EventSourceMapping", "Type: AWS::Lambda::EventSourceMaping", "no resource type"},
		{"MisspeltAlarmProperty", "      ComparisonOperator: GreaterThanOrEqualToThreshold\n", "      ComparisonOp: GreaterThanOrEqualToThreshold\n", `unknown field "ComparisonOp"`},
		{"RefToNothing", "FunctionName: !Ref LeadsFunction", "FunctionName: !Ref LeadFunction", "Ref LeadFunction: no such"},
		{"SubOfNothing", "${LoginLogGroup}:*", "${LogInLogGroup}:*", "LogInLogGroup: no such"},
		{"UnknownCondition", "Condition: UseFunctionUrls", "Condition: UseFunctionURLs", "UseFunctionURLs"},
		{"MisspeltOutputKey", "    Description: \"The message push URL", "    Descripton: \"The message push URL", `unknown field "Descripton"`},
		{"MisspeltParameterKey", "    Default: PassThrough\n", "    Defalt: PassThrough\n", "Tracing has no default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("template.yaml no longer contains %q: update the test", tt.old)
			}
			bad := strings.Replace(src, tt.old, tt.new, 1)
			var errs []string
			for _, params := range deployParameters {
				if err := checkTyped([]byte(bad), params); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) == 0 || !strings.Contains(errs[0], tt.want) {
				t.Errorf("got %v, want an error containing %q", errs, tt.want)
			}
		})
	}
}

// TestResolver checks the resolver on a small template.
func TestResolver(t *testing.T) {
	doc, err := parseYAML([]byte(`
Parameters:
  Mode: {Type: String, Default: a, AllowedValues: [a, b]}
  Topic: {Type: String, Default: ""}
Conditions:
  IsA: !Equals [!Ref Mode, a]
  NotA: !Not [!Condition IsA]
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
Resources:
  Q: {Type: AWS::SQS::Queue}
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := newResolver(doc, map[string]any{"Mode": "b"})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := parseYAML([]byte(`
a: !If [IsA, x, y]
b: !If [HasTopic, [!Ref Topic], !Ref AWS::NoValue]
c: [1, !If [NotA, !Ref AWS::NoValue, 2], 3]
d: !Sub "arn:${AWS::Partition}:sqs:${AWS::Region}:${Q.Arn}"
e: !Select [2, !Split ["/", !GetAtt Q.QueueUrl]]
f: !Join [",", [!Ref Mode, !Ref Q]]
`))
	got, err := r.value(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "map[a:y c:[1 3] d:arn:aws-cn:sqs:cn-north-1:https://Q-Arn.invalid/ e:Q-QueueUrl.invalid f:b,ref-Q]"
	if fmt.Sprint(got) != want {
		t.Errorf("got  %v\nwant %s", got, want)
	}
	for _, bad := range []string{"x: !Ref Nothing", "x: !If [Nope, 1, 2]", "x: !GetAtt Nothing.Arn", "x: !Sub '${Nothing}'", "x: !Select [5, [a]]"} {
		in, _ := parseYAML([]byte(bad))
		if _, err := r.value(in); err == nil {
			t.Errorf("%s: got no error", bad)
		}
	}
	if _, err := newResolver(doc, map[string]any{"Mode": "c"}); err == nil {
		t.Error("Mode c: got no error, want not one of the AllowedValues")
	}
	var ids []string
	for id := range newerProperties {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if _, ok := cloudformation.AllResources()[id]; !ok {
			t.Errorf("newerProperties: goformation knows no %s", id)
		}
	}
}
