#!/usr/bin/env python3
"""Fails if a dependency of phx-channels needs a newer Rust than the crate declares.

Cargo.toml's `rust-version` is the oldest Rust the crate promises to build with. Only one
toolchain is installed where the tests run, so this checks the promise from the other
side: every package that a build of the library compiles (normal and build
dependencies, with every feature on; dev-dependencies do not reach users) must declare
a `rust-version` no newer than the crate's. Clippy's `incompatible_msrv` lint checks the
crate's own code against the same number.

Usage: scripts/check_msrv.py (from anywhere in the repository).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(text):
    """`1.85` or `1.85.1` as a tuple of numbers that compares the way Rust versions do."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    run = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        print(run.stderr, end="", file=sys.stderr)
        return 1
    metadata = json.loads(run.stdout)
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    root = metadata["resolve"]["root"]
    declared = packages[root].get("rust_version")
    if not declared:
        print("Cargo.toml declares no rust-version", file=sys.stderr)
        return 1

    # Every package a build of the library compiles: follow all but dev edges.
    built, stack = set(), [root]
    while stack:
        current = stack.pop()
        if current in built:
            continue
        built.add(current)
        for dep in nodes[current]["deps"]:
            if any(kind["kind"] != "dev" for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])

    newer = sorted(
        (packages[id]["name"], packages[id]["version"], packages[id]["rust_version"])
        for id in built
        if packages[id].get("rust_version") and version(packages[id]["rust_version"]) > version(declared)
    )
    for name, pkg_version, needs in newer:
        print(f"{name} {pkg_version} needs Rust {needs}, newer than rust-version = {declared}", file=sys.stderr)
    if newer:
        return 1
    print(f"rust-version = {declared}: the {len(built) - 1} packages the library builds with ask for no newer Rust")
    return 0


if __name__ == "__main__":
    sys.exit(main())
