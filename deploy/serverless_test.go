package deploy_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wxnotify/wxnotify/shared/secrets"
)

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
		checkSCFEnvironment(t, name, fn["environment"])
		for key := range fn {
			if !slices.Contains(scfFunctionKeys, key) {
				t.Errorf("%s: %q is not a function input of the multi-scf component (%v)", name, key, scfFunctionKeys)
			}
		}
		if got := fmt.Sprint(fn["cls"]); got != "map[logsetId:${env:TENCENT_CLS_LOGSET_ID} topicId:${env:TENCENT_CLS_TOPIC_ID}]" {
			t.Errorf("%s: cls %s, want the CLS logset and topic from TENCENT_CLS_LOGSET_ID and TENCENT_CLS_TOPIC_ID", name, got)
		}
		if got := str(fn["role"]); got != "${env:TENCENT_SCF_ROLE}" {
			t.Errorf("%s: role %q, want ${env:TENCENT_SCF_ROLE} (allowed ssm:GetSecretValue on the secret)", name, got)
		}
	}
}

// scfFunctionKeys are the inputs the multi-scf component reads for a
// function (its FaasInputs), so that a misspelt key fails here rather than
// being ignored at deploy time.
var scfFunctionKeys = []string{"name", "handler", "runtime", "namespace", "description", "memorySize", "timeout",
	"environment", "vpc", "vpcConfig", "cfs", "cls", "tags", "layers", "eip", "publicAccess", "installDependency",
	"ignoreTriggers", "asyncRunEnable", "traceEnable", "role"}

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

// TestServerlessBatchDispatch: on SCF the batch function hands its shards
// to asynchronous invocations of itself, and only it does.
func TestServerlessBatchDispatch(t *testing.T) {
	doc := readDeployFile(t, "serverless.yml")
	for name, fn := range scfFunctions(doc) {
		var dispatch string
		list, _ := fn["environment"].([]any)
		for _, kv := range list {
			if str(path(kv, "key")) == "WXN_BATCH_DISPATCH" {
				dispatch = str(path(kv, "value"))
			}
		}
		want := ""
		if name == "batch" {
			want = "scf"
		}
		if dispatch != want {
			t.Errorf("%s: WXN_BATCH_DISPATCH %q, want %q", name, dispatch, want)
		}
	}
}
