#!/usr/bin/env bash
# Runs every check and test of phx-channels. This is the one command for CI and for a
# fresh machine (Debian, as root, with Rust stable and Node 20 installed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs one named step and reports its time. A failing step ends the run, and its name
# is the last thing printed, so the log shows what failed without scrolling.
step() {
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    local start=$SECONDS
    if ! "$@"; then
        printf '\nFAILED: %s\n' "$name" >&2
        exit 1
    fi
    printf '<== %s: ok (%ds)\n' "$name" $((SECONDS - start))
}

# --- Erlang: a real runtime for tests/token_erlang.rs (Phoenix.Token compatibility) -------
# Debian's erlang-base, with erlang-crypto, which it only recommends.
install_erlang() {
    command -v erl >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Erlang is missing and installing it needs root (apt-get install erlang-base erlang-crypto)" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-base erlang-crypto >/dev/null
}
step "install erlang" install_erlang
# Here a missing `erl` fails the token tests instead of skipping them.
export PHX_REQUIRE_ERLANG=1

# --- Redis: a server of this run's own for the cluster tests (tests/cluster/, tests/js) ----
# Debian's redis-server, started on a free loopback port and stopped when this script ends.
install_redis() {
    command -v redis-server >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "redis-server is missing and installing it needs root (apt-get install redis-server)" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}
step "install redis" install_redis

REDIS_DIR=$(mktemp -d)
REDIS_PID=
stop_redis() {
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$REDIS_DIR"
}
trap stop_redis EXIT
start_redis() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
        --logfile "$REDIS_DIR/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then
            export PHX_TEST_REDIS_URL="redis://127.0.0.1:$port/"
            echo "redis-server (pid $REDIS_PID) on $PHX_TEST_REDIS_URL"
            return 0
        fi
        sleep 0.1
    done
    echo "redis-server did not start; its log:" >&2
    cat "$REDIS_DIR/redis.log" >&2
    return 1
}
step "start redis" start_redis
# Here a missing Redis fails the cluster tests instead of skipping them.
export PHX_REQUIRE_REDIS=1

# --- Rust: format, lints, tests --------------------------------------------------------
step "format" cargo fmt --all -- --check
# The fuzz crate is a workspace of its own, so `--all` does not reach it.
step "format (fuzz)" cargo fmt --manifest-path fuzz/Cargo.toml -- --check
# Built too, so that its targets follow the library's API (they had not since `Ref`).
step "build (fuzz targets)" cargo build --manifest-path fuzz/Cargo.toml
step "clippy" cargo clippy --all-targets -- -D warnings
step "clippy, every feature" cargo clippy --all-targets --all-features -- -D warnings
# MSRV: clippy's incompatible_msrv (above) holds the crate's code to Cargo.toml's
# rust-version; this holds every dependency the library builds with to it.
step "msrv (dependencies)" python3 scripts/check_msrv.py
# No file in src/ imports from a layer above its own (ARCHITECTURE.md, "Layers").
step "layers" python3 scripts/check_layers.py
step "docs" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
# The crate as crates.io would get it: its files package and build on their own.
step "package (publish dry run)" cargo publish --dry-run
step "tests" cargo test --all-targets
# Without `exact-numbers`, a token holding an integer past 64 bits is refused, saying so.
step "token tests without default features" \
    cargo test --no-default-features --lib --test token_vectors token
# TLS (feature `tls`): wss:// from the endpoint and the client, over real sockets.
step "tls tests" cargo test --features tls --test tls
# With every feature, the TLS and cluster types' examples compile and run too.
step "doc tests" cargo test --doc --all-features
# The cluster tests start parity fixtures built with the redis feature.
step "debug build of the parity fixture (feature redis)" cargo build --features redis --example parity
# The unit tests of src/cluster/ and src/presence/remote.rs, and the cluster tests.
step "cluster tests (Redis)" cargo test --features redis --lib --test cluster

# --- JavaScript: the official phoenix client and a real browser (tests/js) --------------
# Debian's Chromium for the browser tests; playwright-core (from npm) drives it headless.
# tls.test.mjs makes its self-signed certificate with the openssl command.
install_chromium() {
    [ -x /usr/bin/chromium ] && command -v openssl >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Debian's chromium or openssl is missing and installing them needs root (apt-get install chromium openssl)" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium openssl >/dev/null
}
step "install chromium and openssl" install_chromium
step "npm ci (tests/js)" npm ci --prefix tests/js --no-audit --no-fund
# Built here so the test runner's server start-up does not wait on the compiler. Every
# feature, so that the fixture has every flag (FIXTURE.md), as tests/js/fixture.mjs runs it
# (tls.test.mjs serves it over TLS, cluster.test.mjs joins it to a Redis).
step "release build of the examples" cargo build --release --examples --all-features
step "official JS client and browser tests" npm test --prefix tests/js

printf '\nAll checks passed.\n'
