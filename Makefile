# sessionlab: the README's two commands are `docker compose up` (or `cargo run`) and `make test`.
BACKEND ?= cookie
PORT ?= 8080
N ?= 2
TOOLS := target/tools/bin
# The compose plugin where it is installed, else the standalone docker-compose 1.x.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: test deps docker-check compose-suite docker-images screenshots compare compare-rev compare-quick lab up down kill-replica docker-smoke lint fmt

## Every test: the lint, unit tests, the acceptance suite through real replicas, HAProxy and
## stores, the static checks of the Docker files, and the compose stack for every strategy in
## real containers (skipped, and said so, where no Docker engine runs; required in CI).
test: deps lint docker-check
	cargo test --workspace --locked
	scripts/compose-suite.sh

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

## Every strategy through every experiment (about 45 minutes on two cores, 10 of them the two release builds): docs/results.md and docs/img/*.svg.
## The release build is measured against one with Cargo's default release settings.
compare: deps
	cargo build --release --locked
	cargo build --profile release-default --locked
	./target/release/sessionlab compare --baseline target/release-default/sessionlab

## This build against an earlier commit, same run: make compare-rev REV=<commit> [STRATEGIES=postgres,mysql].
## The commit is built in a worktree under target/rev/; the report goes to target/compare-rev.
STRATEGIES ?= redis,postgres,mysql
compare-rev: deps
	@test -n "$(REV)" || { echo "make compare-rev REV=<commit>: which commit to measure against" >&2; exit 1; }
	cargo build --release --locked
	rm -rf target/rev/src && git worktree prune && git worktree add --detach target/rev/src $(REV)
	cd target/rev/src && CARGO_TARGET_DIR=$(CURDIR)/target/rev/target cargo build --release --locked
	git worktree remove --force target/rev/src
	./target/release/sessionlab compare --strategies $(STRATEGIES) --baseline target/rev/target/release/sessionlab --baseline-strategies $(STRATEGIES) --out target/compare-rev

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
	SESSION_BACKEND=$(BACKEND) $(COMPOSE) up --build --detach
	@echo "open http://localhost:8080 — stats on http://127.0.0.1:8404"
	@echo "admin token: docker compose exec app1 cat /var/lib/sessionlab/secrets/admin_token"

down:
	$(COMPOSE) down

## Crash a replica as kill -9 would: make kill-replica N=2 (bring it back: docker compose start app$(N))
kill-replica:
	$(COMPOSE) kill -s SIGKILL app$(N)

## Every strategy in containers, as `make test` runs it (needs a Docker engine).
compose-suite docker-smoke: deps
	scripts/compose-suite.sh

## Every image compose and the Dockerfile name: present, pulled, or a stand-in built locally.
docker-images:
	scripts/docker-images.sh

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all
