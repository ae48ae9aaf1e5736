#!/usr/bin/env bash
# For a machine with a Docker engine (a laptop, a CI with an engine): bring the compose stack up
# with each strategy in turn, run the acceptance suite's own replica-kill scenario against
# http://localhost:8080 (app/tests/acceptance/compose.rs), and tear everything down.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    echo "docker-smoke needs a running Docker engine (docker info failed)" >&2
    exit 1
fi
backends=${BACKENDS:-"sticky cookie redis memcached postgres mysql jwt"}
trap 'docker compose down --volumes >/dev/null 2>&1 || true' EXIT

docker compose build
cargo test --locked --test acceptance --no-run
for backend in $backends; do
    echo "== $backend"
    SESSION_BACKEND=$backend docker compose up --detach --wait
    SMOKE_BACKEND=$backend SESSIONLAB_URL=http://localhost:8080 \
        cargo test --locked --test acceptance -- --ignored --exact compose::a_replica_kill_in_compose
    docker compose down --volumes
done
echo "docker-smoke: every strategy behaved in containers"
