#!/usr/bin/env bash
# The compose stack for real (part of `make test`): makes every image available (pulled, or
# stand-ins where there is no registry: scripts/docker-images.sh), builds sessionlab's image
# once, then runs the acceptance tests under app/tests/acceptance/compose/ one at a time, each
# bringing docker-compose.yml up unchanged with one SESSION_BACKEND. Torn down at the end.
#
# No Docker engine: says so and skips, except in CI (CI=true), where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "compose suite: no Docker engine, and CI must run it (docker info failed)" >&2
        exit 1
    fi
    echo "compose suite: SKIPPED, no Docker engine here (docker info failed)"
    exit 0
fi
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "compose suite: neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 1
fi
echo "compose suite: $("${compose[@]}" version | head -n 1), engine $(docker version -f '{{.Server.Version}}')"

project=sessionlabtest
# Every profile's services too (the Redis topologies' tests start theirs).
down() { COMPOSE_PROFILES=sentinel,cluster "${compose[@]}" -p "$project" down --volumes --remove-orphans >/dev/null 2>&1 || true; }
trap down EXIT
down

scripts/docker-images.sh
started=$(date +%s)
"${compose[@]}" -p "$project" build
echo "compose suite: image built in $(($(date +%s) - started)) s"

# One test at a time: they share one stack and one port. --include-ignored is not used: only
# the compose tests are run here (the rest ran in the main `cargo test`).
cargo test --locked --test acceptance compose:: -- --ignored --test-threads=1
