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

# --- Rust: format, lints, tests --------------------------------------------------------
step "format" cargo fmt --all -- --check
# The fuzz crate is a workspace of its own, so `--all` does not reach it.
step "format (fuzz)" cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "clippy" cargo clippy --all-targets -- -D warnings
step "tests" cargo test --all-targets
step "doc tests" cargo test --doc

# --- JavaScript client tests (tests/js) ------------------------------------------------
# TO ADD HERE, one `step` each: `npm ci` in tests/js, installing chromium with apt-get,
# then `node --test` for the suites that drive the official phoenix JS client.

printf '\nAll checks passed.\n'
