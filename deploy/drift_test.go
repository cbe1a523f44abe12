package deploy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/boot"
	"github.com/wxnotify/wxnotify/shared/config"
	"github.com/wxnotify/wxnotify/shared/httpapi"
	"github.com/wxnotify/wxnotify/shared/platform"
	"github.com/wxnotify/wxnotify/shared/secrets"
)

// groupNames name httpapi's route groups as functions' main.go refer to them.
var groupNames = map[string]httpapi.Group{
	"Login": httpapi.Login, "Consent": httpapi.Consent, "Send": httpapi.Send, "Push": httpapi.Push,
	"Batches": httpapi.Batches, "Events": httpapi.Events, "Admin": httpapi.Admin, "Console": httpapi.Console,
}

// healthzFunction is the function API Gateway routes GET /healthz to.
const healthzFunction = "login"

// secretNames are the variables that must come from the secret store,
// never from the template or serverless.yml themselves, under their WXN_
// names and their old ones.
func secretNames() []string {
	names := config.SecretNames()
	for old, name := range config.OldNames() {
		if slices.Contains(names, name) {
			names = append(names, old)
		}
	}
	return names
}

// checkEnvironment checks one function's environment in a deployment
// file: only variables the server reads, under their WXN_ names, no
// secret and no deploy-time copy of one.
func checkEnvironment(t *testing.T, where string, env map[string]any) {
	t.Helper()
	known := append(config.Names(), secrets.Names()...)
	for k, v := range env {
		switch {
		case slices.Contains(secretNames(), k):
			t.Errorf("%s: %s is a secret: it belongs in the secret store (WXN_SECRETS_ID), not the environment", where, k)
		case config.OldNames()[k] != "":
			t.Errorf("%s: %s is an old name: use %s", where, k, config.OldNames()[k])
		case !slices.Contains(known, k):
			t.Errorf("%s: %s is not a variable wxnotify reads (a typo?)", where, k)
		}
		if strings.Contains(fmt.Sprint(v), "{{resolve:") {
			t.Errorf("%s: %s is a deploy-time dynamic reference %v: the functions read the secret store themselves", where, k, v)
		}
	}
}

// functionDirs are the deployable functions: functions/<name>/main.go.
func functionDirs(tb testing.TB) []string {
	tb.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(names)
	if len(names) == 0 {
		tb.Fatal("no functions/*/main.go")
	}
	return names
}

// logicalID is a function's SAM logical id: "wxpush" -> "WxpushFunction",
// as the Makefile's build-<LogicalId> rule and internal/dist expect.
func logicalID(function string) string {
	return strings.ToUpper(function[:1]) + function[1:] + "Function"
}

// groupsOf reads which route groups a function serves from the calls that
// wire it: boot.Main("<function>", httpapi.X...) in functions/<function>
// and Handlers(p, "<function>", httpapi.X...) in shared/boot (the cores of
// functions started with boot.MainCore).
func groupsOf(tb testing.TB, function string) []httpapi.Group {
	tb.Helper()
	var files []string
	for _, dir := range []string{filepath.Join("functions", function), filepath.Join("shared", "boot")} {
		matches, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				files = append(files, m)
			}
		}
	}
	fset := token.NewFileSet()
	var groups []httpapi.Group
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			nameArg := -1
			switch calleeName(call.Fun) {
			case "Main":
				nameArg = 0
			case "Handlers":
				nameArg = 1
			}
			if nameArg < 0 || len(call.Args) <= nameArg {
				return true
			}
			lit, ok := call.Args[nameArg].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || lit.Value != strconv.Quote(function) {
				return true
			}
			for _, arg := range call.Args[nameArg+1:] {
				sel, ok := arg.(*ast.SelectorExpr)
				if !ok {
					continue
				}
				if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "httpapi" {
					continue
				}
				g, ok := groupNames[sel.Sel.Name]
				if !ok {
					tb.Errorf("%s: httpapi.%s is not in groupNames", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				if !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
			return true
		})
	}
	return groups
}

// calleeName is the name a call is made by: "Main" for boot.Main and Main.
func calleeName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// gatewayRoute writes a route pattern as an API Gateway route key: a rest
// parameter {name...} (the console's) is the greedy {name+}.
func gatewayRoute(pattern string) string {
	return regexp.MustCompile(`\{([A-Za-z]+)\.\.\.\}`).ReplaceAllString(pattern, "{$1+}")
}

// wantRoutes are the routes the gateways must send to a function.
func wantRoutes(tb testing.TB, function string) []string {
	var routes []string
	for _, r := range httpapi.Routes(groupsOf(tb, function)...) {
		routes = append(routes, gatewayRoute(r))
	}
	if function == healthzFunction {
		routes = append(routes, httpapi.HealthRoutes...)
	}
	sort.Strings(routes)
	return routes
}

func TestGroupNames(t *testing.T) {
	for _, g := range httpapi.AllGroups {
		found := false
		for _, v := range groupNames {
			found = found || v == g
		}
		if !found {
			t.Errorf("httpapi group %d has no name in groupNames: add it so that its routes are checked", g)
		}
	}
	for _, f := range functionDirs(t) {
		if len(groupsOf(t, f)) == 0 {
			t.Errorf("functions/%s serves no httpapi group", f)
		}
	}
}

// samFunctions are the AWS::Serverless::Function resources by logical id.
func samFunctions(doc map[string]any) map[string]map[string]any {
	fns := map[string]map[string]any{}
	for id, r := range path(doc, "Resources").(map[string]any) {
		if str(path(r, "Type")) == "AWS::Serverless::Function" {
			fns[id] = r.(map[string]any)
		}
	}
	return fns
}

func TestTemplateFunctions(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	if got := str(doc["Transform"]); got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform: got %q, want AWS::Serverless-2016-10-31", got)
	}
	fns := samFunctions(doc)
	var got []string
	for id := range fns {
		got = append(got, id)
	}
	var want []string
	for _, fn := range functionDirs(t) {
		want = append(want, logicalID(fn))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("functions: got %v, want %v (one per functions/ directory)", got, want)
	}
	g := path(doc, "Globals", "Function")
	for key, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if got := str(path(g, key)); got != want {
			t.Errorf("Globals.Function.%s: got %q, want %q", key, got, want)
		}
	}
	if got := fmt.Sprint(path(g, "Architectures")); got != "[arm64]" {
		t.Errorf("Globals.Function.Architectures: got %s, want [arm64] (make build's AWS GOARCH)", got)
	}
	for id, fn := range fns {
		props := path(fn, "Properties")
		for _, key := range []string{"Runtime", "Handler", "Architectures"} {
			if v := path(props, key); v != nil {
				t.Errorf("%s overrides Globals' %s with %v", id, key, v)
			}
		}
		if got := str(path(fn, "Metadata", "BuildMethod")); got != "makefile" {
			t.Errorf("%s: BuildMethod %q, want makefile", id, got)
		}
		if got := str(path(props, "CodeUri")); got != "." {
			t.Errorf("%s: CodeUri %q, want . (the module root, where the Makefile is)", id, got)
		}
		for _, key := range []string{"Policies", "Events"} {
			if v := path(props, key); v != nil {
				t.Errorf("%s has %s %v: its role and event sources are explicit resources, so their permissions are in the template", id, key, v)
			}
		}
		if got, want := fmt.Sprint(path(props, "Role")), "map[Fn::GetAtt:["+roleID(id)+" Arn]]"; got != want {
			t.Errorf("%s: Role %s, want its own role %s", id, got, want)
		}
		if got := str(path(doc, "Resources", roleID(id), "Type")); got != "AWS::IAM::Role" {
			t.Errorf("%s: %s is %q, want an AWS::IAM::Role", id, roleID(id), got)
		}
	}
}

// roleID is the logical id of a function's role: "LoginFunction" -> "LoginRole".
func roleID(functionID string) string { return strings.TrimSuffix(functionID, "Function") + "Role" }

// logGroupID is the logical id of a function's log group.
func logGroupID(functionID string) string {
	return strings.TrimSuffix(functionID, "Function") + "LogGroup"
}

// resourcesOfType are the template's resources of one type by logical id.
func resourcesOfType(doc map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range path(doc, "Resources").(map[string]any) {
		if str(path(r, "Type")) == typ {
			out[id] = r.(map[string]any)
		}
	}
	return out
}

// refTo is the logical id v refers to with !Ref X or !GetAtt X.Attr ("" otherwise).
func refTo(v any) string {
	if s := str(path(v, "Ref")); s != "" {
		return s
	}
	if parts, ok := path(v, "Fn::GetAtt").([]any); ok && len(parts) == 2 {
		return str(parts[0])
	}
	return ""
}

// TestTemplateRoutes checks the HTTP API's routes against the route groups
// each function serves: every route reaches its function's integration.
func TestTemplateRoutes(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	integrations := resourcesOfType(doc, "AWS::ApiGatewayV2::Integration")
	got := map[string][]string{}
	for id, r := range resourcesOfType(doc, "AWS::ApiGatewayV2::Route") {
		p := path(r, "Properties")
		integration, ok := strings.CutPrefix(str(path(p, "Target", "Fn::Sub")), "integrations/${")
		integration = strings.TrimSuffix(integration, "}")
		if !ok || integrations[integration] == nil {
			t.Errorf("%s: Target %v, want !Sub integrations/${<Function>Integration}", id, path(p, "Target"))
			continue
		}
		fn := refTo(path(integrations[integration], "Properties", "IntegrationUri"))
		got[fn] = append(got[fn], str(path(p, "RouteKey")))
		if refTo(path(p, "ApiId")) != "HttpApi" || str(path(r, "Condition")) != "UseHttpApi" {
			t.Errorf("%s: ApiId %v, Condition %v; want !Ref HttpApi and UseHttpApi", id, path(p, "ApiId"), path(r, "Condition"))
		}
	}
	for id, r := range integrations {
		p := path(r, "Properties")
		if str(path(p, "IntegrationType")) != "AWS_PROXY" || str(path(p, "PayloadFormatVersion")) != "2.0" ||
			refTo(path(p, "ApiId")) != "HttpApi" || str(path(r, "Condition")) != "UseHttpApi" {
			t.Errorf("%s: want an AWS_PROXY integration of payload format \"2.0\" on HttpApi, with Condition UseHttpApi", id)
		}
	}
	seen := map[string]string{}
	for _, fn := range functionDirs(t) {
		id := logicalID(fn)
		routes := got[id]
		sort.Strings(routes)
		for _, route := range routes {
			if other, dup := seen[route]; dup {
				t.Errorf("%s is routed to %s and %s", route, other, id)
			}
			seen[route] = id
		}
		if want := wantRoutes(t, fn); !slices.Equal(routes, want) {
			t.Errorf("%s routes:\n got %v\nwant %v", id, routes, want)
		}
	}
	for fn := range got {
		if !slices.Contains(functionDirs(t), strings.ToLower(strings.TrimSuffix(fn, "Function"))) {
			t.Errorf("routes reach %q, which is no function", fn)
		}
	}
	for _, id := range []string{"HttpApi", "HttpApiStage"} {
		if str(path(doc, "Resources", id, "Condition")) != "UseHttpApi" {
			t.Errorf("%s: want Condition UseHttpApi", id)
		}
	}
	stage := path(doc, "Resources", "HttpApiStage", "Properties")
	if str(path(stage, "StageName")) != "$default" || path(stage, "AutoDeploy") != true {
		t.Errorf("HttpApiStage: want the auto-deployed $default stage (no path prefix), got %v", stage)
	}
}

// Which functions take which event sources: functions/leads and
// functions/batch start the cores (boot.LeadsCore, boot.BatchCore).
const (
	eventsFunction = "LeadsFunction"
	tickFunction   = "BatchFunction"
)

// TestTemplateEvents checks the event sources, explicit resources each:
// every one has an adapter in shared/platform, reaches the function that
// has its core, and is allowed to.
func TestTemplateEvents(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	res := path(doc, "Resources").(map[string]any)
	permissions := resourcesOfType(doc, "AWS::Lambda::Permission")
	allowed := func(fn, principal, sourceArnOf string) bool {
		for _, p := range permissions {
			pp := path(p, "Properties")
			if refTo(path(pp, "FunctionName")) == fn && str(path(pp, "Principal")) == principal &&
				str(path(pp, "Action")) == "lambda:InvokeFunction" && refTo(path(pp, "SourceArn")) == sourceArnOf {
				return true
			}
		}
		return false
	}
	sources := 0
	mappings := map[string]int{}
	for id, r := range res {
		p := path(r, "Properties")
		switch typ := str(path(r, "Type")); typ {
		case "AWS::Lambda::EventSourceMapping":
			sources++
			queue := refTo(path(p, "EventSourceArn"))
			if str(path(res, queue, "Type")) != "AWS::SQS::Queue" {
				t.Errorf("%s: source %s is not an SQS queue, the one mapping shared/platform adapts", id, queue)
			}
			if types, _ := path(p, "FunctionResponseTypes").([]any); !slices.Contains(types, any("ReportBatchItemFailures")) {
				t.Errorf("%s: without FunctionResponseTypes [ReportBatchItemFailures]: the runtime answers partial batch failures", id)
			}
			if got := fmt.Sprint(path(res, queue, "Properties", "RedrivePolicy", "maxReceiveCount")); got != "5" {
				t.Errorf("%s: queue %s redrives after %s receipts, want 5 (then its dead-letter queue)", id, queue, got)
			}
			want := []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
			switch fn := refTo(path(p, "FunctionName")); fn {
			case eventsFunction:
				mappings[eventsFunction]++
			case tickFunction:
				// The shard queue: the tick sends to it, the mapping hands
				// the batch function one shard at a time, BatchRunners at once.
				mappings[tickFunction]++
				want = []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"}
				if got := fmt.Sprint(path(p, "BatchSize")); got != "1" {
					t.Errorf("%s: BatchSize %s, want 1 (a shard takes an invocation)", id, got)
				}
				if got := refTo(path(p, "ScalingConfig", "MaximumConcurrency")); got != "BatchRunners" {
					t.Errorf("%s: ScalingConfig.MaximumConcurrency %q, want !Ref BatchRunners", id, got)
				}
				if got := refTo(path(res, tickFunction, "Properties", "Environment", "Variables", "WXN_BATCH_QUEUE_URL")); got != queue {
					t.Errorf("%s: WXN_BATCH_QUEUE_URL of %s is %q, want !Ref %s", id, tickFunction, got, queue)
				}
				vis, _ := path(res, queue, "Properties", "VisibilityTimeout").(int)
				timeout, _ := path(res, tickFunction, "Properties", "Timeout").(int)
				if timeout == 0 || vis < 6*timeout {
					t.Errorf("%s: visibility timeout %d s, want 6 times %s's timeout (%d s) at least", id, vis, tickFunction, timeout)
				}
			default:
				t.Errorf("%s: function %s, want %s or %s", id, fn, eventsFunction, tickFunction)
			}
			role := roleID(refTo(path(p, "FunctionName")))
			if got := allowedActions(doc, role, queue); !slices.Equal(got, want) {
				t.Errorf("%s: %s may %v on %s, want exactly %v", id, role, got, queue, want)
			}
		case "AWS::Events::Rule":
			sources++
			targets, _ := path(p, "Targets").([]any)
			if len(targets) == 0 {
				t.Errorf("%s: no targets", id)
			}
			for _, tg := range targets {
				if fn := refTo(path(tg, "Arn")); fn != eventsFunction {
					t.Errorf("%s: target %s, want %s", id, fn, eventsFunction)
				}
				if path(tg, "DeadLetterConfig", "Arn") == nil {
					t.Errorf("%s: a target without a dead-letter queue", id)
				}
			}
			if !allowed(eventsFunction, "events.amazonaws.com", id) {
				t.Errorf("%s: no AWS::Lambda::Permission lets the rule invoke %s", id, eventsFunction)
			}
		case "AWS::Scheduler::Schedule":
			sources++
			tg := path(p, "Target")
			if got := str(path(tg, "Input")); got != platform.ScheduleInput {
				t.Errorf("%s: Input %q, want platform.ScheduleInput %q", id, got, platform.ScheduleInput)
			}
			if err := checkAWSSchedule(str(path(p, "ScheduleExpression"))); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			fn := refTo(path(tg, "Arn"))
			if fn != tickFunction {
				t.Errorf("%s: target %s, want %s", id, fn, tickFunction)
			}
			role := refTo(path(tg, "RoleArn"))
			if got := allowedActions(doc, role, fn); !slices.Equal(got, []string{"lambda:InvokeFunction"}) {
				t.Errorf("%s: its role %s may %v on %s, want exactly [lambda:InvokeFunction]", id, role, got, fn)
			}
			if got := fmt.Sprint(path(res, role, "Properties", "AssumeRolePolicyDocument", "Statement")); !strings.Contains(got, "Service:scheduler.amazonaws.com") {
				t.Errorf("%s: role %s is not assumed by scheduler.amazonaws.com: %s", id, role, got)
			}
		case "AWS::SNS::Subscription", "AWS::Lambda::EventInvokeConfig", "AWS::Events::EventBus", "AWS::Pipes::Pipe":
			t.Errorf("%s: %s has no adapter in shared/platform", id, typ)
		}
	}
	if sources != 4 || mappings[eventsFunction] != 1 || mappings[tickFunction] != 1 {
		t.Errorf("%d event sources (queue mappings %v), want 4 (the leads queue, the EventBridge rule, the tick schedule, the shard queue)", sources, mappings)
	}
}

// allowedActions are the actions a role's policies (inline and managed in
// the template) allow on the resource logical id refers to, sorted.
func allowedActions(doc map[string]any, role, resource string) []string {
	var docs []any
	props := path(doc, "Resources", role, "Properties")
	policies, _ := path(props, "Policies").([]any)
	for _, p := range policies {
		docs = append(docs, path(p, "PolicyDocument"))
	}
	arns, _ := path(props, "ManagedPolicyArns").([]any)
	for _, a := range arns {
		if alts, ok := path(a, "Fn::If").([]any); ok && len(alts) == 3 {
			a = alts[1]
		}
		docs = append(docs, path(doc, "Resources", refTo(a), "Properties", "PolicyDocument"))
	}
	var actions []string
	for _, d := range docs {
		stmts, _ := path(d, "Statement").([]any)
		for _, st := range stmts {
			if str(path(st, "Effect")) != "Allow" || !slices.Contains(refsIn(path(st, "Resource")), resource) {
				continue
			}
			actions = append(actions, stringList(path(st, "Action"))...)
		}
	}
	sort.Strings(actions)
	return slices.Compact(actions)
}

// refsIn are the logical ids a value refers to: !Ref, !GetAtt and the ${X}
// and ${X.Attr} of !Sub, in lists too.
func refsIn(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			out = append(out, refsIn(e)...)
		}
	case map[string]any:
		if id := refTo(v); id != "" {
			return []string{id}
		}
		if s, ok := v["Fn::Sub"].(string); ok {
			for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(\.[A-Za-z]+)?\}`).FindAllStringSubmatch(s, -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// stringList is a policy's Action or Resource as a list: one string or a list of them.
func stringList(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestTemplateEnvironment(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	global, _ := path(doc, "Globals", "Function", "Environment", "Variables").(map[string]any)
	want := map[string]string{"WXN_STORE": "dynamodb", "WXN_CONFIG": "/var/task/" + boot.ConfigFileName,
		"WXN_SECRETS_SOURCE": secrets.SourceAWS}
	for k, v := range want {
		if got := str(global[k]); got != v {
			t.Errorf("Globals %s: got %q, want %q", k, got, v)
		}
	}
	if got := fmt.Sprint(global["WXN_DYNAMODB_TABLE"]); got != "map[Ref:StateTable]" {
		t.Errorf("Globals WXN_DYNAMODB_TABLE: got %s, want !Ref StateTable", got)
	}
	params, _ := path(doc, "Parameters").(map[string]any)
	ref, _ := path(global["WXN_SECRETS_ID"], "Ref").(string)
	if _, ok := params[ref]; !ok {
		t.Errorf("Globals WXN_SECRETS_ID: got %v, want !Ref of the parameter naming the secret", global["WXN_SECRETS_ID"])
	}
	if global["WXN_WECHAT_APPID"] == nil {
		t.Error("Globals: WXN_WECHAT_APPID is missing (config.Require needs it)")
	}
	checkEnvironment(t, "Globals", global)
	for id, fn := range samFunctions(doc) {
		env, _ := path(fn, "Properties", "Environment", "Variables").(map[string]any)
		checkEnvironment(t, id, env)
		for _, k := range []string{"WXN_SECRETS_SOURCE", "WXN_SECRETS_ID"} {
			if _, ok := env[k]; ok {
				t.Errorf("%s overrides Globals' %s: every function reads the one secret", id, k)
			}
		}
	}
	for name, p := range params {
		if path(p, "NoEcho") != nil || slices.Contains(secretNames(), strings.ToUpper(name)) {
			t.Errorf("parameter %s looks like a secret: secrets come from Secrets Manager", name)
		}
	}
}

func TestTemplateState(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	table := path(doc, "Resources", "StateTable", "Properties")
	checks := map[string]string{
		"BillingMode":                      "PAY_PER_REQUEST",
		"KeySchema":                        "[map[AttributeName:pk KeyType:HASH] map[AttributeName:sk KeyType:RANGE]]",
		"AttributeDefinitions":             "[map[AttributeName:pk AttributeType:S] map[AttributeName:sk AttributeType:S]]",
		"TimeToLiveSpecification":          "map[AttributeName:ttl Enabled:true]",
		"DeletionProtectionEnabled":        "true",
		"PointInTimeRecoverySpecification": "map[PointInTimeRecoveryEnabled:true]",
	}
	for key, want := range checks {
		if got := fmt.Sprint(path(table, key)); got != want {
			t.Errorf("StateTable %s: got %s, want %s (shared/store/dynamostore/doc.go, production settings)", key, got, want)
		}
	}
	for _, key := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if got := str(path(doc, "Resources", "StateTable", key)); got != "Retain" {
			t.Errorf("StateTable %s: got %q, want Retain (the state outlives the stack)", key, got)
		}
	}
	if path(table, "GlobalSecondaryIndexes") != nil || path(table, "LocalSecondaryIndexes") != nil {
		t.Error("StateTable has an index: dynamostore queries none, and the policies allow none")
	}
	stmts := path(doc, "Resources", "StateTablePolicy", "Properties", "PolicyDocument", "Statement").([]any)
	if len(stmts) != 1 {
		t.Fatalf("StateTablePolicy: %d statements, want 1", len(stmts))
	}
	got := stringList(path(stmts[0], "Action"))
	sort.Strings(got)
	if want := storeActions(t); !slices.Equal(got, want) {
		t.Errorf("StateTablePolicy actions: got %v, want exactly the operations dynamostore calls, %v", got, want)
	}
	if got := fmt.Sprint(path(stmts[0], "Resource")); got != "map[Fn::GetAtt:[StateTable Arn]]" {
		t.Errorf("StateTablePolicy resource: got %s, want the table only", got)
	}
	for _, fn := range functionDirs(t) {
		role := roleID(logicalID(fn))
		if got := allowedActions(doc, role, "StateTable"); !slices.Equal(got, storeActions(t)) {
			t.Errorf("%s may %v on the table, want %v", role, got, storeActions(t))
		}
	}
}

// storeActions are the DynamoDB operations the store calls: the methods of
// the *dynamodb.Client that shared/store/dynamostore's Store calls, read
// from its source (table.go's CreateTable is for tests and local runs),
// as IAM actions, sorted.
// iamActions are the IAM actions a DynamoDB API call needs. A transaction
// has no action of its own: its items need those of the item operations
// (PutItem, DeleteItem, already in the set of a store that also calls
// them alone) and dynamodb:ConditionCheckItem for its condition checks
// (docs.aws.amazon.com, "Using IAM with DynamoDB transactions").
func iamActions(call string) []string {
	if call == "TransactWriteItems" {
		return []string{"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}
	}
	return []string{"dynamodb:" + call}
}

func storeActions(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(root, "shared", "store", "dynamostore", "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	fset := token.NewFileSet()
	var actions []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || filepath.Base(name) == "table.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if recv, ok := sel.X.(*ast.SelectorExpr); ok && recv.Sel.Name == "client" {
				actions = append(actions, iamActions(sel.Sel.Name)...)
			}
			return true
		})
	}
	sort.Strings(actions)
	actions = slices.Compact(actions)
	if len(actions) == 0 {
		tb.Fatal("found no s.client.X calls in shared/store/dynamostore")
	}
	return actions
}

func TestMakefileTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	for _, fn := range functionDirs(t) {
		id := logicalID(fn)
		out, err := exec.Command("make", "-s", "-n", "-C", root, "build-"+id, "ARTIFACTS_DIR=/tmp/artifacts").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "./internal/dist -sam "+id+" -artifacts \"/tmp/artifacts\"") {
			t.Errorf("make build-%s: got %q (%v), want the internal/dist -sam command", id, out, err)
		}
	}
	out, err := exec.Command("make", "-s", "-n", "-C", root, "build").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "./internal/dist -out dist") {
		t.Errorf("make build: got %q (%v), want the internal/dist command", out, err)
	}
}

// TestCloudsAgree checks that a function gets the same time on both clouds.
func TestCloudsAgree(t *testing.T) {
	sam := readDeployFile(t, "template.yaml")
	global := path(sam, "Globals", "Function", "Timeout")
	fns := samFunctions(sam)
	for name, fn := range scfFunctions(readDeployFile(t, "serverless.yml")) {
		timeout := path(fns[logicalID(name)], "Properties", "Timeout")
		if timeout == nil {
			timeout = global
		}
		if timeout != fn["timeout"] {
			t.Errorf("%s: timeout %v on AWS, %v on Tencent Cloud", name, timeout, fn["timeout"])
		}
	}
}

// TestDeployDocs keeps docs/deploy.md's commands in step with the files.
func TestDeployDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{"sam build", "sam deploy", "scf deploy", "make build", "aws secretsmanager create-secret"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/deploy.md does not mention %q", want)
		}
	}
	// Every parameter of template.yaml has a row in the parameters table.
	for name := range path(readDeployFile(t, "template.yaml"), "Parameters").(map[string]any) {
		if !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("docs/deploy.md has no row for the template parameter %s", name)
		}
	}
	// Every ${env:NAME} of serverless.yml is named.
	src, err := os.ReadFile(filepath.Join(root, "serverless.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for l := range strings.Lines(string(src)) {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			code = append(code, l)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{env:(\w+)\}`).FindAllStringSubmatch(strings.Join(code, ""), -1) {
		if !strings.Contains(doc, m[1]) {
			t.Errorf("docs/deploy.md does not name serverless.yml's setting %s", m[1])
		}
	}
	for _, k := range append(config.SecretNames(), secrets.Names()...) {
		if !strings.Contains(doc, k) {
			t.Errorf("docs/deploy.md does not name %s", k)
		}
	}
}
