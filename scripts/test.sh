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

# --- Rust: format, lints, tests --------------------------------------------------------
step "format" cargo fmt --all -- --check
# The fuzz crate is a workspace of its own, so `--all` does not reach it.
step "format (fuzz)" cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "clippy" cargo clippy --all-targets -- -D warnings
step "clippy, every feature" cargo clippy --all-targets --all-features -- -D warnings
# No file in src/ imports from a layer above its own (ARCHITECTURE.md, "Layers").
step "layers" python3 scripts/check_layers.py
step "docs" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
step "tests" cargo test --all-targets
# TLS (feature `tls`): wss:// from the endpoint and the client, over real sockets.
step "tls tests" cargo test --features tls --test tls
# With `tls`, the TLS types' examples compile and run too.
step "doc tests" cargo test --doc --features tls

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
# Built here so the test runner's server start-up does not wait on the compiler.
# With `tls`, as tests/js/fixture.mjs runs them (tls.test.mjs serves the fixture over TLS).
step "release build of the examples" cargo build --release --features tls --examples
step "official JS client and browser tests" npm test --prefix tests/js

printf '\nAll checks passed.\n'
