#!/usr/bin/env bash
# Makes every image docker-compose.yml and docker/Dockerfile name available to the local Docker
# engine: present ones are kept, pullable ones are pulled, and where there is no registry a
# stand-in is built under the same name:tag from a debootstrap'd Debian root and Debian's
# packages (docker/standins/README.md says what a stand-in is and is not).
set -euo pipefail
cd "$(dirname "$0")/.."
standins=docker/standins
work=${STANDIN_WORKDIR:-/var/tmp/sessionlab-standins}

# The runtime image first: every other stand-in is built on it.
images() {
    sed -n 's/^ARG RUNTIME_IMAGE=//p' docker/Dockerfile
    sed -n 's/^ARG RUST_IMAGE=//p' docker/Dockerfile
    sed -n 's/^ *image: *\([^ #]*\).*/\1/p' docker-compose.yml | grep -v '^sessionlab:' | sort -u
}
base=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' docker/Dockerfile)

build_debian() { # debian:<release>-slim
    local image=$1 release=${1#debian:} root
    release=${release%-slim}
    command -v debootstrap >/dev/null || { echo "the stand-in for $image needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    root=$(mktemp -d "$work/root.XXXXXX")
    debootstrap --variant=minbase "$release" "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    # Point and security updates, as the official image's sources have.
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb http://deb.debian.org/debian $release main
deb http://deb.debian.org/debian $release-updates main
deb http://deb.debian.org/debian-security $release-security main
SOURCES
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
    rm -rf "$root"
}

build_rust() { # rust:<version>-slim-<release>
    local image=$1 version=${1#rust:} context toolchain
    version=${version%%-*}
    rustc --version | grep -q "^rustc $version\." \
        || { echo "the stand-in for $image needs Rust $version on this machine (rustc says: $(rustc --version))" >&2; exit 1; }
    toolchain=$(rustc --print sysroot)
    context=$(mktemp -d "$work/rust.XXXXXX")
    mkdir -p "$context/toolchain" "$context/extra-ca"
    cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$context/toolchain/"
    cp /usr/local/share/ca-certificates/*.crt "$context/extra-ca/" 2>/dev/null || true
    docker build --quiet -f "$standins/rust.Dockerfile" --build-arg "BASE=$base" \
        --build-arg "RUST_VERSION=$(rustc --version | cut -d' ' -f2)" -t "$image" "$context" >/dev/null
    rm -rf "$context"
}

build_service() { # haproxy, redis, memcached, postgres, mariadb
    local image=$1 name=${1%%:*} tag=${1#*:}
    docker build --quiet -f "$standins/$name.Dockerfile" --build-arg "BASE=$base" \
        --build-arg "PG_MAJOR=${tag%%.*}" -t "$image" "$standins" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
    echo "docker-images: no Docker engine (docker info failed)" >&2
    exit 1
fi
mkdir -p "$work"
# Debian first (every other stand-in is built on it), then the rest side by side: they spend
# their time downloading packages.
build() {
    local image=$1
    case "$image" in
        debian:*) build_debian "$image" ;;
        rust:*) build_rust "$image" ;;
        *) [ -f "$standins/${image%%:*}.Dockerfile" ] \
               || { echo "no registry has $image and there is no stand-in for it" >&2; return 1; }
           build_service "$image" ;;
    esac
}
missing=()
for image in $(images); do
    if docker image inspect "$image" >/dev/null 2>&1; then
        echo "$image: present"
    elif docker pull --quiet "$image" >/dev/null 2>&1; then
        echo "$image: pulled"
    else
        missing+=("$image")
    fi
done
pids=()
for image in "${missing[@]}"; do
    log="$work/$(echo "$image" | tr ':/' '__').log"
    if [ "$image" = "$base" ]; then
        # In the background and waited for, so that `set -e` still holds inside build.
        build "$image" >"$log" 2>&1 &
        wait "$!" || { tail -n 30 "$log" >&2; exit 1; }
        echo "$image: stand-in built (docker/standins/README.md)"
    else
        build "$image" >"$log" 2>&1 &
        pids+=("$!:$image:$log")
    fi
done
failed=0
for job in "${pids[@]}"; do
    IFS=: read -r pid image tag log <<<"$job"
    if wait "$pid"; then
        echo "$image:$tag: stand-in built (docker/standins/README.md)"
    else
        echo "$image:$tag: the stand-in failed to build:" >&2
        tail -n 30 "$log" >&2
        failed=1
    fi
done
exit "$failed"
