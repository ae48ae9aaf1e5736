# sessionlab: the two commands of the README are `cargo run` and `make test`; the rest are helpers.
BACKEND ?= cookie
PORT ?= 8080

.PHONY: test deps lab lint fmt

## Every test: unit tests, and the acceptance suite through real replicas, HAProxy and Redis.
test: deps
	cargo test --workspace --locked

## Installs haproxy, redis-server and the C libraries diesel links (as root), or names them.
deps:
	@scripts/install-deps.sh

## Three replicas behind HAProxy on http://127.0.0.1:$(PORT): make lab BACKEND=redis
lab: deps
	cargo build --release --locked
	./target/release/sessionlab lab --backend $(BACKEND) --port $(PORT)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all
