# Bedrock Entitlement Gateway. `make run` and `make test` are all a new machine needs (plus Go).
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin/gateway
GOTESTFLAGS ?=

.PHONY: run test build bench bench-go lint fuzz image clean

# make run listens on loopback only; other addresses: make run LISTEN=127.0.0.1:18080 OPS_LISTEN=127.0.0.1:19090
LISTEN     ?= 127.0.0.1:8080
OPS_LISTEN ?= 127.0.0.1:9090

## run: the gateway on embedded defaults (in-process Redis, built-in simulator, example organization), over TLS with a generated certificate, IAM identity tokens on; the web console at http://$(OPS_LISTEN)/console/ (its URL and token are printed when ready)
# The admin token goes through the environment: a flag would show in ps.
run:
	GATEWAY_ADMIN_TOKEN=dev=dev-admin-token-change-me \
	$(GO) run ./cmd/gateway serve --simulate --bootstrap deploy/examples/state.yaml \
		--prices-file deploy/examples/prices.yaml \
		--iam-identity --tls-self-signed \
		--cloudwatch-namespace BedrockGateway --cloudwatch-interval 10s \
		--listen $(LISTEN) --ops-listen $(OPS_LISTEN) --log-format text

## test: the whole suite with the race detector
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(GOTESTFLAGS) $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/gateway

## bench: Go benchmarks of every hot-path stage, then the load harness (bench/); BENCHFLAGS=-quick for a smoke run
bench: bench-go
	$(GO) run ./bench -out bench/RESULTS.md $(BENCHFLAGS)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)

## lint: gofmt, go vet, staticcheck
lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## fuzz: a short run of every fuzz target
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 15s $$pkg || exit 1; \
		done; \
	done

## image: the container image (needs Docker)
image:
	docker build -f deploy/docker/Dockerfile -t bedrock-gateway:dev .

clean:
	rm -rf bin
