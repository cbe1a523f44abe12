# wxnotify: the targets the README and .ci/run use.
GO       ?= go
PKGS     ?= ./...
BENCH    ?= .
BENCHPKG ?= ./shared/store/...

.PHONY: dev test test-js lint vet staticcheck gotest bench bench-coldstart build

## dev: run every function on one local server (bbolt + sandbox WeChat).
dev:
	$(GO) run ./cmd/wxnotify dev

## test: lint, then every test with the race detector (the README's test command).
test: lint gotest test-js

gotest: node_modules/.bin/dynalite
	$(GO) test -race -count=1 $(PKGS)

## test-js: the mini-program client kit's tests (Node's built-in runner).
test-js:
	node --test clients/miniprogram/test/

lint: vet staticcheck
	@unformatted=$$(find . -name '*.go' -not -path './node_modules/*' -not -path './dist/*' -exec gofmt -l {} +); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

node_modules/.bin/dynalite: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

## bench: benchmarks (BENCHPKG=./shared/... BENCH=Name to narrow).
bench: node_modules/.bin/dynalite
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(BENCHPKG)

## bench-coldstart: binary sizes and cold starts under the emulated Lambda runtime.
bench-coldstart:
	$(GO) test -run '^$$' -bench ColdStart -benchtime 30x -v ./deploy

## build: every function's packages for AWS (dist/aws: arm64 bootstrap + zip) and Tencent Cloud
## (dist/tencent: amd64 main + zip, and the multi-scf bundle serverless.yml deploys). Reproducible.
## CONFIG=path bundles that wxnotify.yaml (default ./wxnotify.yaml, else the example).
build:
	GO=$(GO) $(GO) run ./internal/dist -out dist $(if $(CONFIG),-config $(CONFIG))

## build-<LogicalId>: one AWS function for `sam build` (BuildMethod: makefile), e.g. build-LoginFunction.
build-%Function:
	GO=$(GO) $(GO) run ./internal/dist -sam $*Function -artifacts "$(ARTIFACTS_DIR)" $(if $(CONFIG),-config $(CONFIG))
