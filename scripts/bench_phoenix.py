#!/usr/bin/env python3
"""phx-channels side by side with Phoenix: the table at the top of BENCHMARKS.md.

Runs each row against its floor, this build of the parity fixture and a reference Phoenix
server that serves the same fixture (FIXTURE.md: socket /bench/websocket, channels bench:*),
in interleaved rounds (every row's floor, phx-channels and Phoenix one after the other,
each server back to idle before a run), and prints the medians as a Markdown table. The
Phoenix server runs outside this script: give its URL and the PID of its VM (beam.smp),
whose CPU is read from /proc. Every run's JSON line is kept in --out.
Build first: cargo build --release --all-features --examples

    python3 scripts/bench_phoenix.py --phoenix-url ws://127.0.0.1:4990/bench/websocket \\
        --phoenix-pid PID [--runs 3] [--only echo1,echo50,echo50t,bcast1k,bcast10k,intercept,connect,connect2]
        [--echo-client "--client-poll spin"]

Floors: a plain tungstenite echo server with a thread per connection (the same frames, no
Phoenix protocol) for echo, and one paced loopback write of a ready frame per delivery
(`load tcp-floor`) for broadcasts. Connect rates count connections opened and joined:
N / (time to open all N + time to join all their channels).
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_defaults import BIN, load, pick, raise_fd_limit, settle, start, threads_of, wait_port  # noqa: E402

RAW_PORT, PARITY_PORT = 4941, 4949
ECHO = ["--duration", 5]


def connect_rate(record):
    return round(record["connections"] / (record["connect_s"] + record["join_s"]), 1)


# Each row: (key, label, floor, server, fields), where floor is the load tool's arguments for
# the floor (None when the row has none) and server those for a server under test, whose URL
# and PID are added. A field is (heading, path in the JSON line, or a function of it; scale).
ROWS = [
    ("echo1", "echo, 1 connection",
     ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 1] + ECHO, ["echo", "-c", 1] + ECHO,
     [("p50 round trip, µs", "latency.p50_us", 1), ("server CPU per round trip, µs",
                                                    "server_cpu.per_round_trip_us", 1)]),
    ("echo50", "echo, 50 connections",
     ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 50] + ECHO, ["echo", "-c", 50] + ECHO,
     [("server CPU per round trip, µs", "server_cpu.per_round_trip_us", 1), ("p50 round trip, µs",
                                                                           "latency.p50_us", 1)]),
    # The same with one client thread per connection, each waiting for its own reply: every
    # request then arrives alone, as from a client that runs a blocking loop per connection.
    ("echo50t", "echo, 50 connections, a client thread each",
     ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 50, "--threads", 50] + ECHO,
     ["echo", "-c", 50, "--threads", 50] + ECHO,
     [("server CPU per round trip, µs", "server_cpu.per_round_trip_us", 1), ("p50 round trip, µs",
                                                                           "latency.p50_us", 1)]),
    ("bcast1k", "broadcast to 1,000 at 50/s",
     ["tcp-floor", "--n", 1000, "--count", 150, "--rate", 50],
     ["broadcast", "-n", 1000, "--count", 150, "--rate", 50],
     [("CPU per delivery, µs", "server_cpu.per_delivery_us", 1), ("p50 delivery, ms", "latency.p50_us", 1e-3)]),
    ("bcast10k", "broadcast to 10,000 at 4/s",
     ["tcp-floor", "--n", 9500, "--count", 20, "--rate", 4],
     ["broadcast", "-n", 10000, "--count", 20, "--rate", 4],
     [("CPU per delivery, µs", "server_cpu.per_delivery_us", 1), ("p50 delivery, ms", "latency.p50_us", 1e-3)]),
    ("intercept", "1,000 intercepting at 50/s", None,
     ["broadcast", "-n", 1000, "--count", 150, "--rate", 50, "--topic", "bench_icpt:load"],
     [("CPU per delivery, µs", "server_cpu.per_delivery_us", 1), ("p50 delivery, ms", "latency.p50_us", 1e-3)]),
    ("connect", "connect + join 5,000, 1 channel each", None, ["connect", "-n", 5000, "-k", 1, "--hold", 1],
     [("connections/s", connect_rate, 1)]),
    ("connect2", "connect + join 5,000, 2 channels each", None, ["connect", "-n", 5000, "-k", 2, "--hold", 1],
     [("connections/s", connect_rate, 1)]),
]
# The floor's figure for a broadcast row: one paced write per delivery, no latency.
FLOOR_FIELDS = {"tcp-floor": [("CPU per delivery, µs", "write.per_frame_us", 1)]}


def value(record, field):
    _, path, scale = field
    raw = path(record) if callable(path) else pick(record, path)
    return raw * scale


def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phoenix-url", required=True, help="ws://HOST:PORT/bench/websocket of the reference server")
    parser.add_argument("--phoenix-pid", required=True, type=int, help="the PID of its VM, for its CPU")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(row[0] for row in ROWS))
    parser.add_argument("--echo-client", default="",
                        help="more load tool options for every echo run, e.g. '--client-poll spin' or '--inflight 4'")
    parser.add_argument("--out", default="/tmp/bench_phoenix.jsonl")
    opts = parser.parse_args()
    raise_fd_limit()
    rows = [row for row in ROWS if row[0] in opts.only.split(",")]
    extra = shlex.split(opts.echo_client)
    raw = start([os.path.join(BIN, "load"), "raw-server", "--port", str(RAW_PORT), "--max-seconds", "7200"])
    parity = start([os.path.join(BIN, "parity"), "--port", str(PARITY_PORT)])
    servers = [("phx-channels", f"ws://127.0.0.1:{PARITY_PORT}/bench/websocket", parity.pid),
               ("Phoenix", opts.phoenix_url, opts.phoenix_pid)]
    results = {}
    try:
        wait_port(RAW_PORT, raw)
        wait_port(PARITY_PORT, parity)
        idle_threads = {parity.pid: threads_of(parity.pid)}
        with open(opts.out, "w") as out:
            for run in range(opts.runs):
                for key, label, floor, server, fields in rows:
                    targets = []
                    if floor:
                        pid = ["--server-pid", raw.pid] if floor[0] == "raw-echo" else []
                        targets.append(("floor", floor + pid + (extra if floor[0] == "raw-echo" else [])))
                    for name, url, pid in servers:
                        targets.append((name, server + ["--url", url, "--server-pid", pid]
                                        + (extra if server[0] == "echo" else [])))
                    for name, args in targets:
                        settle([parity], idle_threads)
                        if name == "Phoenix":
                            time.sleep(1)  # its processes end within a second of their connections
                        record = load(args)
                        record["bench"] = {"run": run + 1, "row": key, "server": name}
                        out.write(json.dumps(record) + "\n")
                        row_fields = FLOOR_FIELDS.get(args[0], fields)
                        values = [value(record, field) for field in row_fields]
                        results.setdefault((key, name), []).append(values)
                        shown = ", ".join(f"{f[0]} {fmt(v)}" for f, v in zip(row_fields, values))
                        print(f"run {run + 1} {name}: {label}: {shown}", flush=True)
    finally:
        parity.terminate()
        raw.terminate()
    print_table(rows, results, opts.runs)


def print_table(rows, results, runs):
    print(f"\nmedians of {runs} interleaved rounds (every run in brackets)\n")
    print("| | floor | phx-channels | Phoenix | phx / Phoenix | phx / floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label, floor, _, fields in rows:
        for i, field in enumerate(fields):
            cells = []
            medians = {}
            for name in ["floor", "phx-channels", "Phoenix"]:
                runs_of = results.get((key, name))
                if not runs_of or i >= len(runs_of[0]):
                    cells.append("")
                    continue
                values = [v[i] for v in runs_of]
                medians[name] = statistics.median(values)
                cells.append(f"{fmt(medians[name])} ({', '.join(fmt(v) for v in values)})")
            ratio = lambda a, b: f"{medians[a] / medians[b]:.2f}x" if a in medians and medians.get(b) else ""
            print(f"| {label}: {field[0]} | {' | '.join(cells)} | {ratio('phx-channels', 'Phoenix')} "
                  f"| {ratio('phx-channels', 'floor')} |")


if __name__ == "__main__":
    main()
