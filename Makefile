# wxnotify: the targets the README and .ci/run use.
GO       ?= go
PKGS     ?= ./...
BENCH    ?= .
BENCHPKG ?= ./shared/store/...

.PHONY: dev test test-js typecheck-js lint vet tidy actionlint release staticcheck gotest bench bench-coldstart build soak load console-screenshots

## dev: run every function on one local server (bbolt + sandbox WeChat). ARGS passes flags to
## `wxnotify dev` (make dev ARGS="--addr 127.0.0.1:9090 --push off"). The CLI is built to DEVBIN and run
## from there, so that its own message is all a failure prints (go run would add its exit status).
ARGS   ?=
DEVBIN ?= ./wxnotify
dev:
	@$(GO) build -o $(DEVBIN) ./cmd/wxnotify
	@$(DEVBIN) dev $(ARGS)

## test: lint, then every test with the race detector (the README's test command).
test: lint sec gotest test-js typecheck-js

gotest: node_modules/.bin/dynalite
	$(GO) test -race -count=1 $(PKGS)

## test-js: the mini-program client kit's tests (Node's built-in runner), among them the package test
## (npm pack, an offline install into a scratch project, the miniprogram folder DevTools builds from).
test-js:
	node --test clients/miniprogram/test/

## typecheck-js: the kit, its index.d.ts and the example page, type-checked strictly against WeChat's
## official typings (miniprogram-api-typings and typescript, pinned by package-lock.json).
typecheck-js: node_modules/.bin/tsc
	node_modules/.bin/tsc -p clients/miniprogram/tsconfig.json --checkJs --strict --noEmit

# tsc comes with the same npm ci as dynalite; this runs it only when an older install lacks it.
node_modules/.bin/tsc: node_modules/.bin/dynalite
	@test -e $@ || npm ci --no-audit --no-fund
	@touch $@

lint: vet staticcheck tidy actionlint
	@unformatted=$$(find . -name '*.go' -not -path './node_modules/*' -not -path './dist/*' -exec gofmt -l {} +); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## actionlint: the GitHub workflows are valid (actionlint, pinned by go.mod's tool directive).
actionlint:
	$(GO) tool actionlint -color=false .github/workflows/*.yml

## tidy: go.mod and go.sum are what `go mod tidy` makes of the code (fails with the diff otherwise).
tidy:
	$(GO) mod tidy -diff

staticcheck:
	$(GO) tool staticcheck $(PKGS)

node_modules/.bin/dynalite: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

## console-screenshots: the ops console's screenshots of docs/console (README.md shows them), taken by the
## console's accessibility test in chromium on its seeded fixture (docs/console.md#accessibility-and-screenshots).
console-screenshots: node_modules/.bin/dynalite
	WXN_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run TestConsoleAccessibility -v ./shared/console

## bench: benchmarks (BENCHPKG=./shared/... BENCH=Name to narrow).
bench: node_modules/.bin/dynalite
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(BENCHPKG)

## soak: the full-scale soak (10,000 notifications, 30% of WeChat and 5% of store calls failing); the
## normal test run includes a 1,000-notification one.
soak:
	$(GO) test -count=1 -run TestSoak -v -timeout 60m ./internal/soak -soak.n=10000 -soak.users=1000 -soak.report=soak-report.txt

## load: the memory load test at full scale: 50 clients for 60 s on `wxnotify dev` as it runs (bbolt with
## fsync, the sandbox's retention), then 10 s idle; prints RSS and live heap and fails above the bound of
## docs/performance.md. The normal test run includes a short one. LOADFLAGS adds flags
## (LOADFLAGS=-load.heapprofile=heap.prof writes a heap profile taken after the idle time).
LOADFLAGS ?=
load:
	$(GO) test -count=1 -run TestLoadMemory -v -timeout 10m ./cmd/wxnotify -load.clients=50 -load.duration=60s -load.idle=10s $(LOADFLAGS)

## bench-coldstart: binary sizes and cold starts under the emulated Lambda runtime.
bench-coldstart:
	$(GO) test -run '^$$' -bench ColdStart -benchtime 30x -v ./deploy

## build: every function's packages for AWS (dist/aws: arm64 bootstrap + zip) and Tencent Cloud
## (dist/tencent: amd64 main + zip, and the multi-scf bundle serverless.yml deploys). Reproducible.
## CONFIG=path bundles that wxnotify.yaml (default ./wxnotify.yaml, else the example).
build:
	GO=$(GO) $(GO) run ./internal/dist -out dist $(if $(CONFIG),-config $(CONFIG))

## release: the release files in dist/release - every function zip for AWS (linux/arm64, linux/amd64) and
## Tencent Cloud (linux/amd64), the CLI for linux, darwin and windows, and SHA256SUMS; byte-identical on
## every run of the same commit. VERSION=v1.2.0 names the files (default: git describe).
release:
	GO=$(GO) $(GO) run ./internal/dist -release -out dist/release $(if $(VERSION),-version $(VERSION)) $(if $(CONFIG),-config $(CONFIG))

## build-<LogicalId>: one AWS function for `sam build` (BuildMethod: makefile), e.g. build-LoginFunction.
build-%Function:
	GO=$(GO) $(GO) run ./internal/dist -sam $*Function -artifacts "$(ARTIFACTS_DIR)" $(if $(CONFIG),-config $(CONFIG))

## sec: gosec's security checks, pinned by go.mod's tool directive (offline once `go mod download` ran).
## The deployed code gets every rule; the CLI (cmd/) may open the files its operator names (G304); the build
## tool internal/dist runs on the developer's machine and writes release files (0644/0755 by design).
sec:
	$(GO) tool gosec -quiet -exclude-dir=node_modules -exclude-dir=internal/dist -exclude-dir=cmd ./...
	$(GO) tool gosec -quiet -exclude=G304 ./cmd/...

## fuzz: every fuzz target (func Fuzz* in *_test.go) for FUZZTIME each (default 30s), one after the other;
## FUZZ=regexp narrows the targets (make fuzz FUZZ=Push FUZZTIME=5m). New crashers land in the package's
## testdata/fuzz/<Target>/ and fail the run; `go test` replays them from then on. FUZZFLAGS adds go test
## flags (FUZZFLAGS=-parallel=1 leaves cores to other work).
FUZZTIME  ?= 30s
FUZZ      ?= .
FUZZFLAGS ?=
fuzz:
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' shared cmd internal functions 2>/dev/null | sort | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; dir=./$$(dirname "$$file"); \
		echo "$$name" | grep -Eq -- '$(FUZZ)' || continue; \
		echo "== $$name ($$dir) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) "$$dir" || exit 1; \
	done
