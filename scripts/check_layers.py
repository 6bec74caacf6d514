#!/usr/bin/env python3
"""Checks the crate's layer rule: a file in src/ may import only from its own layer or
the layers below it (see ARCHITECTURE.md). Prints every import that points up and
exits 1 if there is one.

A file's layer comes from its path; an import's layer from the first segment after
`crate::`. Comments are skipped, so doc links may point anywhere.
"""
import pathlib
import re
import sys

# Bottom to top. Each entry: the layer's name and the top-level modules in it.
LAYERS = [
    ("wire formats and values", {
        "payload", "message", "message_ref", "serializer", "error", "stats", "logging", "params", "origin",
        "connect_info", "subscriber_id", "base64url", "bounded", "info", "stop_reason", "token", "telemetry", "base64",
        "scheduling", "assigns", "features", "futex_hash", "thread_name", "spare_threads",
    }),
    ("socket I/O and the client", {"transport", "client"}),
    ("channels and fan-out", {
        "inbox", "intercepted", "pubsub", "presence", "socket", "channel", "channel_runtime", "channel_thread",
        "router", "timer", "call", "cluster",
    }),
    ("protocol session", {"protocol"}),
    ("endpoint", {"endpoint", "bench_internals", "lib", "testing"}),
]

RANK = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}
CRATE_PATH = re.compile(r"\bcrate::(\{[^}]*\}|\w+)")


def module_of(path: pathlib.Path, src: pathlib.Path) -> str:
    first = path.relative_to(src).parts[0]
    return first[:-3] if first.endswith(".rs") else first


def imported_modules(line: str):
    for match in CRATE_PATH.finditer(line):
        target = match.group(1)
        if target.startswith("{"):
            for part in target[1:-1].split(","):
                name = part.strip().split("::")[0]
                if name:
                    yield name
        else:
            yield target


def main() -> int:
    src = pathlib.Path(__file__).resolve().parent.parent / "src"
    problems = []
    for path in sorted(src.rglob("*.rs")):
        module = module_of(path, src)
        if module not in RANK:
            problems.append(f"{path.relative_to(src.parent)}: module `{module}` has no layer in {__file__}")
            continue
        rank = RANK[module]
        # Comments become blanks, so that line numbers stay and doc links do not count.
        code = re.sub(r"//[^\n]*", "", path.read_text())
        for match in CRATE_PATH.finditer(code):
            number = code.count("\n", 0, match.start()) + 1
            for target in imported_modules(match.group(0)):
                if target in ("self", "super"):
                    continue
                if target not in RANK:
                    problems.append(f"{path.relative_to(src.parent)}:{number}: `crate::{target}` has no layer")
                elif RANK[target] > rank:
                    problems.append(
                        f"{path.relative_to(src.parent)}:{number}: the {LAYERS[rank][0]} layer imports "
                        f"`crate::{target}` from the {LAYERS[RANK[target]][0]} layer above it"
                    )
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"layers: every import in src/ points down or sideways ({len(LAYERS)} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
