package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// What counts as a wildcard, and the exceptions allowed, in template.yaml's
// policies (every PolicyDocument and AssumeRolePolicyDocument, in roles,
// managed policies and queue policies alike):
//
//   - An action is a literal "service:Operation" without * or ?: no
//     "dynamodb:*", no "*", no "s3:Get*". NotAction, NotResource and
//     NotPrincipal are refused: they grant everything they do not name.
//   - A resource is a !Ref or !GetAtt of a resource of the template, a !Ref
//     of a parameter whose AllowedPattern refuses * and ?, or a !Sub whose
//     literal text has no * or ?, starting "arn:${AWS::Partition}:".
//   - Two exceptions. A function may write to the log streams of its own log
//     group, "...:log-group:${<Function>LogGroup}:*": Lambda names the
//     streams at run time. X-Ray's PutTraceSegments and PutTelemetryRecords
//     take Resource "*": they have no resource type, and IAM accepts nothing
//     else for them; the policy granting them exists only with
//     Tracing=Active.
//   - No table ARN ending in /index/*: the table has no index (TestTemplateState).
//   - A principal is a service; "*" is refused in policy documents.
//
// Resource-based permissions (AWS::Lambda::Permission) name one function
// and one action each; Principal "*" only for a public Function URL, and the
// HTTP API's SourceArn is "${HttpApi}/*": the route part of an execute-api
// ARN holds the request's actual path (path parameters), and which paths
// reach a function is decided by the routes.

// logStreamsRe is the one wildcard resource allowed for the logs actions.
var logStreamsRe = regexp.MustCompile(`^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:\$\{(\w+LogGroup)\}:\*$`)

var actionRe = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)

// policyProblems lists what is wrong with the policy documents in the
// resource id of doc, by the rules above.
func policyProblems(doc map[string]any, id string) []string {
	res := path(doc, "Resources").(map[string]any)
	r := res[id]
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, id+": "+fmt.Sprintf(format, args...)) }
	for _, pd := range policyDocuments(path(r, "Properties")) {
		stmts, ok := path(pd, "Statement").([]any)
		if !ok {
			bad("a policy document without a Statement list")
			continue
		}
		for _, st := range stmts {
			m, _ := st.(map[string]any)
			for _, neg := range []string{"NotAction", "NotResource", "NotPrincipal"} {
				if _, ok := m[neg]; ok {
					bad("%s grants everything it does not name", neg)
				}
			}
			if p, ok := m["Principal"]; ok {
				if svc := str(path(p, "Service")); svc == "" || strings.Contains(svc, "*") || len(p.(map[string]any)) != 1 {
					bad("principal %v: want one service", p)
				}
			}
			actions := stringList(m["Action"])
			if len(actions) == 0 {
				bad("a statement without actions")
			}
			for _, a := range actions {
				if !actionRe.MatchString(a) {
					bad("action %q: want service:Operation, without wildcards", a)
				}
			}
			if _, trust := m["Principal"]; trust && m["Resource"] == nil {
				continue // a trust policy's statement has no resource
			}
			resources, _ := m["Resource"].([]any)
			if resources == nil {
				resources = []any{m["Resource"]}
			}
			for _, rv := range resources {
				if p := resourceProblem(doc, id, r, actions, rv); p != "" {
					bad("resource %v: %s", rv, p)
				}
			}
		}
	}
	return problems
}

// resourceProblem says what is wrong with one resource of a statement, or "".
func resourceProblem(doc map[string]any, id string, r any, actions []string, v any) string {
	params, _ := path(doc, "Parameters").(map[string]any)
	res := path(doc, "Resources").(map[string]any)
	if s, ok := v.(string); ok {
		xray := []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
		sorted := slices.Sorted(slices.Values(actions))
		if s == "*" && slices.Equal(sorted, xray) && str(path(r, "Condition")) == "TracingActive" {
			return ""
		}
		return "a literal resource; want !Ref, !GetAtt or !Sub with ${AWS::Partition}"
	}
	if name := str(path(v, "Ref")); name != "" {
		if p, ok := params[name]; ok {
			pattern, _ := path(p, "AllowedPattern").(string)
			re, err := regexp.Compile(pattern)
			if pattern == "" || err != nil || re.MatchString("arn:aws:secretsmanager:us-east-1:123456789012:secret:*") ||
				re.MatchString("*") || re.MatchString("arn:aws:secretsmanager:us-east-1:123456789012:secret:wxnotify-??????") {
				return fmt.Sprintf("parameter %s: its AllowedPattern %q must refuse * and ?", name, pattern)
			}
			return ""
		}
	}
	if ref := refTo(v); ref != "" {
		if res[ref] == nil {
			return "no such resource"
		}
		if str(path(res, ref, "Type")) == "AWS::Logs::LogGroup" {
			return "a log group's Arn ends in :*; write the log-stream ARN with !Sub"
		}
		return ""
	}
	sub, ok := path(v, "Fn::Sub").(string)
	if !ok {
		return "want !Ref, !GetAtt or !Sub"
	}
	if !strings.HasPrefix(sub, "arn:${AWS::Partition}:") {
		return "an ARN starts arn:${AWS::Partition}:"
	}
	if m := logStreamsRe.FindStringSubmatch(sub); m != nil {
		for _, a := range actions {
			if a != "logs:CreateLogStream" && a != "logs:PutLogEvents" {
				return "the log streams' wildcard is for logs:CreateLogStream and logs:PutLogEvents only"
			}
		}
		if want := strings.TrimSuffix(id, "Role") + "LogGroup"; m[1] != want {
			return fmt.Sprintf("%s may write to %s; want its own %s", id, m[1], want)
		}
		return ""
	}
	if literal := regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(sub, ""); strings.ContainsAny(literal, "*?") {
		return "a wildcard"
	}
	return ""
}

// policyDocuments finds the policy documents anywhere in v.
func policyDocuments(v any) []any {
	var out []any
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "PolicyDocument" || k == "AssumeRolePolicyDocument" {
				out = append(out, e)
				continue
			}
			out = append(out, policyDocuments(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, policyDocuments(e)...)
		}
	}
	return out
}

// permissionProblems checks an AWS::Lambda::Permission.
func permissionProblems(doc map[string]any, id string) []string {
	p := path(doc, "Resources", id, "Properties")
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, id+": "+fmt.Sprintf(format, args...)) }
	action, principal := str(path(p, "Action")), str(path(p, "Principal"))
	if action != "lambda:InvokeFunction" && action != "lambda:InvokeFunctionUrl" {
		bad("action %q: want lambda:InvokeFunction or lambda:InvokeFunctionUrl", action)
	}
	if fn := refTo(path(p, "FunctionName")); str(path(doc, "Resources", fn, "Type")) != "AWS::Serverless::Function" {
		bad("FunctionName %v: want !Ref of one of the functions", path(p, "FunctionName"))
	}
	switch principal {
	case "*":
		if str(path(p, "FunctionUrlAuthType")) != "NONE" && path(p, "InvokedViaFunctionUrl") != true {
			bad("Principal * is for a public Function URL only (FunctionUrlAuthType NONE or InvokedViaFunctionUrl)")
		}
		if path(p, "SourceArn") != nil {
			bad("a Function URL permission has no SourceArn")
		}
	case "apigateway.amazonaws.com":
		want := "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"
		if got := str(path(p, "SourceArn", "Fn::Sub")); got != want {
			bad("SourceArn %v: want !Sub %s (this API only)", path(p, "SourceArn"), want)
		}
	case "events.amazonaws.com":
		if str(path(doc, "Resources", refTo(path(p, "SourceArn")), "Type")) != "AWS::Events::Rule" {
			bad("SourceArn %v: want !GetAtt of the rule", path(p, "SourceArn"))
		}
	default:
		bad("principal %q has no event source in the template", principal)
	}
	return problems
}

// templateProblems are every policy and permission problem of a template.
func templateProblems(doc map[string]any) []string {
	var problems []string
	var ids []string
	for id := range path(doc, "Resources").(map[string]any) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		problems = append(problems, policyProblems(doc, id)...)
		if str(path(doc, "Resources", id, "Type")) == "AWS::Lambda::Permission" {
			problems = append(problems, permissionProblems(doc, id)...)
		}
	}
	return problems
}

func TestTemplatePolicies(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	for _, p := range templateProblems(doc) {
		t.Error(p)
	}
	// Every function reads the secret: config.Require needs the AppSecret,
	// the session secret and the API keys on every function.
	for _, fn := range functionDirs(t) {
		role := roleID(logicalID(fn))
		if got := allowedActions(doc, role, "SecretArn"); !slices.Equal(got, []string{"secretsmanager:GetSecretValue"}) {
			t.Errorf("%s may %v on the secret, want exactly [secretsmanager:GetSecretValue]", role, got)
		}
		if got := allowedActions(doc, role, logGroupID(logicalID(fn))); !slices.Equal(got, []string{"logs:CreateLogStream", "logs:PutLogEvents"}) {
			t.Errorf("%s may %v on its log group, want [logs:CreateLogStream logs:PutLogEvents]", role, got)
		}
	}
}

// TestTemplatePoliciesCatchWildcards feeds templateProblems copies of
// template.yaml with one wildcard each.
func TestTemplatePoliciesCatchWildcards(t *testing.T) {
	src := string(readTemplateSource(t))
	tests := []struct{ name, old, new, want string }{
		{"ServiceWildcard", "- dynamodb:GetItem\n", "- dynamodb:*\n", `action "dynamodb:*"`},
		{"ActionPrefix", "- dynamodb:GetItem\n", "- dynamodb:Get*\n", `action "dynamodb:Get*"`},
		{"StarAction", "Action: secretsmanager:GetSecretValue", `Action: "*"`, `action "*"`},
		{"StarResource", "Resource: !Ref SecretArn", `Resource: "*"`, "a literal resource"},
		{"ArnWildcard", "Resource: !GetAtt LeadsQueue.Arn", `Resource: !Sub "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*"`, "a wildcard"},
		{"IndexWildcard", "Resource: !GetAtt StateTable.Arn", `Resource: !Sub "${StateTable.Arn}/index/*"`, "arn:${AWS::Partition}"},
		{"HardCodedPartition", "Resource: !GetAtt StateTable.Arn", `Resource: !Sub "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${StateTable}"`, "arn:${AWS::Partition}"},
		{"LogGroupArn", `Resource: !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LoginLogGroup}:*"`, "Resource: !GetAtt LoginLogGroup.Arn", "ends in :*"},
		{"AnotherLogGroup", "log-group:${LoginLogGroup}:*", "log-group:${SendLogGroup}:*", "want its own LoginLogGroup"},
		{"NotAction", "            Action: secretsmanager:GetSecretValue\n", "            NotAction: secretsmanager:GetSecretValue\n", "NotAction grants"},
		{"StarPrincipal", "              Service: events.amazonaws.com\n", "              AWS: \"*\"\n", "want one service"},
		{"XRayWithoutCondition", "    Condition: TracingActive\n    Properties:\n      Description: wxnotify functions - write traces", "    Properties:\n      Description: wxnotify functions - write traces", "a literal resource"},
		{"OpenParameter", `secret:[A-Za-z0-9/_+=.@-]+$"`, `secret:.+$"`, "must refuse * and ?"},
		{"ApiPermissionAnyApi", "${AWS::AccountId}:${HttpApi}/*", "${AWS::AccountId}:*", "this API only"},
		{"StarPrincipalPermission", "      Principal: events.amazonaws.com\n      SourceArn: !GetAtt LeadsBusRule.Arn", "      Principal: \"*\"\n      SourceArn: !GetAtt LeadsBusRule.Arn", "public Function URL only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("template.yaml no longer contains %q: update the test", tt.old)
			}
			doc, err := parseYAML([]byte(strings.Replace(src, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			problems := templateProblems(doc)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("got %q, want a problem containing %q", problems, tt.want)
			}
		})
	}
}

// TestTemplatePartition keeps AWS's partition and domain out of the
// template's text, so that it deploys to aws-cn (and aws-us-gov) too.
func TestTemplatePartition(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	for _, p := range partitionProblems(doc) {
		t.Error(p)
	}
	bad := map[string]any{"Resources": map[string]any{"X": map[string]any{"Properties": map[string]any{
		"A": map[string]any{"Fn::Sub": "arn:aws:s3:::${B}"}, "C": "https://example.amazonaws.com/"}}}}
	if got := partitionProblems(bad); len(got) != 2 {
		t.Errorf("partitionProblems: got %q, want 2 problems", got)
	}
}

func partitionProblems(doc map[string]any) []string {
	var problems []string
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "AllowedPattern" {
					continue // a pattern may accept every partition
				}
				walk(where+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		case string:
			if strings.Contains(v, "arn:aws:") || strings.Contains(v, "arn:aws-cn:") {
				problems = append(problems, fmt.Sprintf("%s: %q hard-codes a partition: use arn:${AWS::Partition}:", where, v))
			}
			if strings.Contains(v, ".amazonaws.com/") || strings.HasSuffix(v, ".amazonaws.com") && !strings.Contains(where, "Principal") {
				problems = append(problems, fmt.Sprintf("%s: %q hard-codes AWS's domain: use ${AWS::URLSuffix}", where, v))
			}
		}
	}
	for _, section := range []string{"Resources", "Outputs", "Globals", "Parameters"} {
		walk(section, doc[section])
	}
	return problems
}
