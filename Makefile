# sessionlab: the README's two commands are `docker compose up` (or `cargo run`) and `make test`.
BACKEND ?= cookie
PORT ?= 8080
N ?= 2
TOOLS := target/tools/bin

.PHONY: test deps docker-check screenshots compare compare-quick lab up down kill-replica docker-smoke lint fmt

## Every test: unit tests, the acceptance suite through real replicas, HAProxy and stores, and
## every check of the Docker files that runs without a Docker engine.
test: deps docker-check
	cargo test --workspace --locked

## Installs (as root) or names the Debian packages; puts the Docker checkers in target/tools.
deps:
	@scripts/install-deps.sh

## The compose file against the Compose Specification; the Dockerfile against hadolint.
docker-check: deps
	$(TOOLS)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(TOOLS)/hadolint docker/Dockerfile

## The README's pictures (docs/img/), taken by the browser tests in headless Chromium.
screenshots: deps
	SESSIONLAB_SCREENSHOTS=$(CURDIR)/docs/img cargo test --locked --test acceptance browser:: -- --nocapture

## Every strategy through every experiment (about fifteen minutes on two cores): docs/results.md and docs/img/*.svg.
## The release build is measured against one with Cargo's default release settings.
compare: deps
	cargo build --release --locked
	cargo build --profile release-default --locked
	./target/release/sessionlab compare --baseline target/release-default/sessionlab

## The same in about three minutes (CI runs it through `make test`), written to target/compare.
compare-quick: deps
	cargo build --release --locked
	./target/release/sessionlab compare --quick --out target/compare

## Three replicas behind HAProxy on http://127.0.0.1:$(PORT), no Docker: make lab BACKEND=redis
lab: deps
	cargo build --release --locked
	./target/release/sessionlab lab --backend $(BACKEND) --port $(PORT)

## The same topology in containers (needs Docker): make up BACKEND=redis
up:
	SESSION_BACKEND=$(BACKEND) docker compose up --build --detach --wait
	@echo "open http://localhost:8080 — stats on http://127.0.0.1:8404"

down:
	docker compose down

## Crash a replica as kill -9 would: make kill-replica N=2 (bring it back: docker compose start app$(N))
kill-replica:
	docker compose kill --signal SIGKILL app$(N)

## Where Docker runs: every strategy in containers, through the test suite's own survival scenario.
docker-smoke:
	scripts/docker-smoke.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all
