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
	"Batches": httpapi.Batches, "Events": httpapi.Events, "Admin": httpapi.Admin,
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

// wantRoutes are the routes the gateways must send to a function.
func wantRoutes(tb testing.TB, function string) []string {
	routes := httpapi.Routes(groupsOf(tb, function)...)
	if function == healthzFunction {
		routes = append(routes, "GET /healthz")
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
		if got := fmt.Sprint(path(props, "Policies")); got != "[map[Ref:StateTablePolicy]]" {
			t.Errorf("%s: Policies %s, want only StateTablePolicy", id, got)
		}
	}
}

func TestTemplateRoutes(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	fns := samFunctions(doc)
	seen := map[string]string{}
	for _, fn := range functionDirs(t) {
		id := logicalID(fn)
		var got []string
		events, _ := path(fns[id], "Properties", "Events").(map[string]any)
		for name, ev := range events {
			if str(path(ev, "Type")) != "HttpApi" {
				continue
			}
			p := path(ev, "Properties")
			route := str(path(p, "Method")) + " " + str(path(p, "Path"))
			got = append(got, route)
			if other, dup := seen[route]; dup {
				t.Errorf("%s is routed to %s and %s", route, other, id)
			}
			seen[route] = id
			if fmt.Sprint(path(p, "ApiId")) != "map[Ref:HttpApi]" || str(path(p, "PayloadFormatVersion")) != "2.0" {
				t.Errorf("%s.%s: ApiId %v, PayloadFormatVersion %v; want !Ref HttpApi and \"2.0\"",
					id, name, path(p, "ApiId"), path(p, "PayloadFormatVersion"))
			}
		}
		sort.Strings(got)
		if want := wantRoutes(t, fn); !slices.Equal(got, want) {
			t.Errorf("%s routes:\n got %v\nwant %v", id, got, want)
		}
	}
}

func TestTemplateEvents(t *testing.T) {
	doc := readDeployFile(t, "template.yaml")
	for id, fn := range samFunctions(doc) {
		events, _ := path(fn, "Properties", "Events").(map[string]any)
		for name, ev := range events {
			p := path(ev, "Properties")
			switch typ := str(path(ev, "Type")); typ {
			case "HttpApi":
			case "SQS":
				if types, _ := path(p, "FunctionResponseTypes").([]any); !slices.Contains(types, any("ReportBatchItemFailures")) {
					t.Errorf("%s.%s: SQS without FunctionResponseTypes [ReportBatchItemFailures]: the runtime answers partial batch failures", id, name)
				}
			case "EventBridgeRule":
				if path(p, "DeadLetterConfig") == nil {
					t.Errorf("%s.%s: EventBridge rule without a dead-letter queue", id, name)
				}
			case "ScheduleV2":
				if got := str(path(p, "Input")); got != platform.ScheduleInput {
					t.Errorf("%s.%s: Input %q, want platform.ScheduleInput %q", id, name, got, platform.ScheduleInput)
				}
				if err := checkAWSSchedule(str(path(p, "ScheduleExpression"))); err != nil {
					t.Errorf("%s.%s: %v", id, name, err)
				}
			default:
				t.Errorf("%s.%s: event type %s has no adapter in shared/platform", id, name, typ)
			}
		}
	}
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
		"BillingMode":             "PAY_PER_REQUEST",
		"KeySchema":               "[map[AttributeName:pk KeyType:HASH] map[AttributeName:sk KeyType:RANGE]]",
		"AttributeDefinitions":    "[map[AttributeName:pk AttributeType:S] map[AttributeName:sk AttributeType:S]]",
		"TimeToLiveSpecification": "map[AttributeName:ttl Enabled:true]",
	}
	for key, want := range checks {
		if got := fmt.Sprint(path(table, key)); got != want {
			t.Errorf("StateTable %s: got %s, want %s (shared/store/dynamostore/doc.go)", key, got, want)
		}
	}
	stmts := path(doc, "Resources", "StateTablePolicy", "Properties", "PolicyDocument", "Statement").([]any)
	if len(stmts) != 1 {
		t.Fatalf("StateTablePolicy: %d statements, want 1", len(stmts))
	}
	wantActions := "[dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:DeleteItem dynamodb:Query]"
	if got := fmt.Sprint(path(stmts[0], "Action")); got != wantActions {
		t.Errorf("StateTablePolicy actions: got %s, want exactly %s", got, wantActions)
	}
	if got := fmt.Sprint(path(stmts[0], "Resource")); got != "map[Fn::GetAtt:[StateTable Arn]]" {
		t.Errorf("StateTablePolicy resource: got %s, want the table only", got)
	}
	if path(doc, "Outputs", "ApiUrl") == nil {
		t.Error("Outputs: no ApiUrl")
	}
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

// scfFunctions are serverless.yml's functions by key.
func scfFunctions(doc map[string]any) map[string]map[string]any {
	fns := map[string]map[string]any{}
	m, _ := path(doc, "inputs", "functions").(map[string]any)
	for k, v := range m {
		fns[k], _ = v.(map[string]any)
	}
	return fns
}

func TestServerlessFunctions(t *testing.T) {
	doc := readDeployFile(t, "serverless.yml")
	if got := str(doc["component"]); got != "multi-scf" {
		t.Errorf("component: got %q, want multi-scf", got)
	}
	in := path(doc, "inputs")
	if got := str(path(in, "runtime")); got != "Go1" {
		t.Errorf("runtime: got %q, want Go1", got)
	}
	if got := str(path(in, "src", "src")); got != "./dist/tencent/multi-scf" {
		t.Errorf("src: got %q, want ./dist/tencent/multi-scf (make build's bundle)", got)
	}
	fns := scfFunctions(doc)
	var got []string
	for k := range fns {
		got = append(got, k)
	}
	sort.Strings(got)
	if want := functionDirs(t); !slices.Equal(got, want) {
		t.Errorf("functions: got %v, want %v (one per functions/ directory)", got, want)
	}
	for name, fn := range fns {
		if got := str(fn["handler"]); got != name {
			t.Errorf("%s: handler %q, want %q (the binary's name in the bundle)", name, got, name)
		}
		if m, ok := fn["memorySize"].(int); !ok || !(m == 64 || m >= 128 && m <= 3072 && m%128 == 0) {
			t.Errorf("%s: memorySize %v, want 64 or a multiple of 128 up to 3072", name, fn["memorySize"])
		}
		if s, ok := fn["timeout"].(int); !ok || s < 1 || s > 900 {
			t.Errorf("%s: timeout %v, want 1..900 seconds", name, fn["timeout"])
		}
		if str(path(fn, "vpc", "vpcId")) == "" || fn["publicAccess"] != true {
			t.Errorf("%s: want a vpc (Redis) and publicAccess (WeChat's API)", name)
		}
		if got := str(fn["role"]); got != "${env:TENCENT_SCF_ROLE}" {
			t.Errorf("%s: role %q, want ${env:TENCENT_SCF_ROLE} (allowed ssm:GetSecretValue on the secret)", name, got)
		}
		checkSCFEnvironment(t, name, fn["environment"])
	}
}

func checkSCFEnvironment(t *testing.T, function string, v any) {
	t.Helper()
	env := map[string]any{}
	list, _ := v.([]any)
	for _, kv := range list {
		env[str(path(kv, "key"))] = str(path(kv, "value"))
	}
	if env["WXN_STORE"] != "redis" {
		t.Errorf("%s: WXN_STORE %q, want redis", function, env["WXN_STORE"])
	}
	if env["WXN_SECRETS_SOURCE"] != secrets.SourceTencent {
		t.Errorf("%s: WXN_SECRETS_SOURCE %q, want %s", function, env["WXN_SECRETS_SOURCE"], secrets.SourceTencent)
	}
	for _, k := range []string{"WXN_WECHAT_APPID", "WXN_SECRETS_ID"} {
		if env[k] != "${env:"+k+"}" {
			t.Errorf("%s: %s is %q, want ${env:%s} (a setting of the deployer's)", function, k, env[k], k)
		}
	}
	checkEnvironment(t, function, env)
	for k, v := range env {
		if s := v.(string); strings.HasPrefix(s, "${env:") && !slices.Contains([]string{"WXN_WECHAT_APPID", "WXN_SECRETS_ID", "WXN_PUSH_ENABLED"}, k) {
			t.Errorf("%s: %s is %s: only settings come from the deployer's environment", function, k, s)
		}
	}
	if _, ok := env["WXN_CONFIG"]; ok {
		t.Errorf("%s: WXN_CONFIG is set; the bundle's wxnotify.yaml next to the binary is the configuration", function)
	}
}

func TestServerlessTriggers(t *testing.T) {
	doc := readDeployFile(t, "serverless.yml")
	fns := scfFunctions(doc)
	urls := map[string]int{}
	triggers, _ := path(doc, "inputs", "triggers").([]any)
	for i, tr := range triggers {
		fn, typ, p := str(path(tr, "function")), str(path(tr, "type")), path(tr, "parameters")
		if fns[fn] == nil {
			t.Errorf("trigger %d (%s): no function %q", i, typ, fn)
		}
		switch typ {
		case "http":
			urls[fn]++
			if str(path(p, "authType")) != "NONE" || path(p, "netConfig", "enableExtranet") != true {
				t.Errorf("%s Function URL: want authType NONE (wxnotify authenticates) and public access", fn)
			}
		case "timer":
			if err := checkTencentCron(str(path(p, "cronExpression"))); err != nil {
				t.Errorf("%s timer: %v", fn, err)
			}
		case "ckafka":
			if r, ok := path(p, "retry").(int); !ok || r < 1 || r > 100 {
				t.Errorf("%s ckafka: retry %v, want 1..100 (the runtime fails the whole batch on a failure)", fn, path(p, "retry"))
			}
		default:
			t.Errorf("%s: trigger type %s has no adapter in shared/platform", fn, typ)
		}
	}
	for _, fn := range functionDirs(t) {
		serves := len(groupsOf(t, fn)) > 0
		if serves && urls[fn] != 1 {
			t.Errorf("%s: %d Function URLs, want 1", fn, urls[fn])
		}
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

var rateRe = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// checkAWSSchedule validates an EventBridge Scheduler expression: rate(N
// unit), unit singular exactly when N is 1, or cron() with six fields of
// which day-of-month or day-of-week is "?".
func checkAWSSchedule(expr string) error {
	if m := rateRe.FindStringSubmatch(expr); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || (n == 1) != !strings.HasSuffix(m[2], "s") {
			return fmt.Errorf("%q: rate needs a positive value, with a singular unit for 1 only", expr)
		}
		return nil
	}
	inner, ok := strings.CutPrefix(expr, "cron(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return fmt.Errorf("%q is neither rate(...) nor cron(...)", expr)
	}
	f := strings.Fields(strings.TrimSuffix(inner, ")"))
	if len(f) != 6 {
		return fmt.Errorf("%q: an AWS cron has 6 fields (minutes hours day-of-month month day-of-week year)", expr)
	}
	if (f[2] == "?") == (f[4] == "?") {
		return fmt.Errorf("%q: exactly one of day-of-month and day-of-week must be ?", expr)
	}
	bounds := [][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {1, 7}, {1970, 2199}}
	for i, field := range f {
		if field == "?" && (i == 2 || i == 4) {
			continue
		}
		if err := checkCronField(field, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("%q field %d: %v", expr, i+1, err)
		}
	}
	return nil
}

// checkTencentCron validates an SCF timer: seven fields (second minute
// hour day-of-month month day-of-week year).
func checkTencentCron(expr string) error {
	f := strings.Fields(expr)
	if len(f) != 7 {
		return fmt.Errorf("%q: an SCF timer has 7 fields (second minute hour day month week year)", expr)
	}
	bounds := [][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}, {1970, 2099}}
	for i, field := range f {
		if err := checkCronField(field, bounds[i][0], bounds[i][1]); err != nil {
			return fmt.Errorf("%q field %d: %v", expr, i+1, err)
		}
	}
	return nil
}

// checkCronField accepts *, N, A-B, lists of those, and /step after * or a
// value or range, within [lo, hi].
func checkCronField(field string, lo, hi int) error {
	for part := range strings.SplitSeq(field, ",") {
		base, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > hi {
				return fmt.Errorf("bad step %q", step)
			}
		}
		if base == "*" {
			continue
		}
		from, to, isRange := strings.Cut(base, "-")
		if !isRange {
			to = from
		}
		a, errA := strconv.Atoi(from)
		b, errB := strconv.Atoi(to)
		if errA != nil || errB != nil || a < lo || b > hi || a > b {
			return fmt.Errorf("%q is not *, a value or a range within %d-%d", base, lo, hi)
		}
	}
	return nil
}

func TestScheduleValidators(t *testing.T) {
	tests := []struct {
		expr  string
		check func(string) error
		ok    bool
	}{
		{"rate(1 minute)", checkAWSSchedule, true},
		{"rate(5 minutes)", checkAWSSchedule, true},
		{"rate(1 minutes)", checkAWSSchedule, false},
		{"rate(2 minute)", checkAWSSchedule, false},
		{"rate(0 minutes)", checkAWSSchedule, false},
		{"cron(0/5 * * * ? *)", checkAWSSchedule, true},
		{"cron(0 9 ? * 2-6 *)", checkAWSSchedule, true},
		{"cron(0 9 * * * *)", checkAWSSchedule, false},
		{"cron(0 9 * * ?)", checkAWSSchedule, false},
		{"cron(61 9 * * ? *)", checkAWSSchedule, false},
		{"every minute", checkAWSSchedule, false},
		{"0 */1 * * * * *", checkTencentCron, true},
		{"0 0 2 1 * * *", checkTencentCron, true},
		{"*/5 * * * * * *", checkTencentCron, true},
		{"0 30 9 * * 1-5 *", checkTencentCron, true},
		{"0 */1 * * * *", checkTencentCron, false},
		{"0 60 * * * * *", checkTencentCron, false},
		{"0 0 24 * * * *", checkTencentCron, false},
		{"0 0 0 0 * * *", checkTencentCron, false},
		{"0 */0 * * * * *", checkTencentCron, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if err := tt.check(tt.expr); (err == nil) != tt.ok {
				t.Errorf("got %v, want valid %v", err, tt.ok)
			}
		})
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
	for _, k := range append(config.SecretNames(), secrets.Names()...) {
		if !strings.Contains(doc, k) {
			t.Errorf("docs/deploy.md does not name %s", k)
		}
	}
}
