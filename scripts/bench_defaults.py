#!/usr/bin/env python3
"""The default-settings benchmarks of BENCHMARKS.md, as a user runs them.

Starts the parity fixture and the plain tungstenite echo server at their defaults (no
pinning, the normal scheduler), then runs each measurement --runs times, interleaved
with its floor, and prints the medians and ranges. Every run's JSON line is kept in
--out. Build first: cargo build --release --all-features --examples

    python3 scripts/bench_defaults.py [--runs 3] [--only echo,broadcast,intercept]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples")
PARITY_PORT, RAW_PORT = 4807, 4900


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(20000, hard), hard))


def start(args, wrap=()):
    """Starts a server that bounds its own life; returns its process."""
    return subprocess.Popen(list(wrap) + [os.path.join(BIN, args[0])] + args[1:], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)


def load(*args, timeout=300):
    """Runs the load tool; returns its final JSON line."""
    cmd = [os.path.join(BIN, "load")] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=raise_fd_limit)
    lines = [line for line in out.stdout.splitlines() if line.startswith('{"')]
    if out.returncode != 0 or not lines:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1])


def wait_port(port):
    import socket
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def pick(record, path):
    for key in path.split("."):
        record = record[key]
    return record


# name -> (what it measures, [(label, subcommand args, field)] run in this order each round)
def measurements(spid, rpid):
    return {
        "echo": [
            ("floor: tungstenite echo, 50 conns, server CPU per round trip (µs)",
             ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 50, "--duration", 5, "--server-pid", rpid],
             ["server_cpu.per_round_trip_us", "latency.p50_us"]),
            ("phx-channels echo, 50 conns, server CPU per round trip (µs)",
             ["echo", "-c", 50, "--duration", 5, "--server-pid", spid],
             ["server_cpu.per_round_trip_us", "latency.p50_us"]),
        ],
        "broadcast": [
            ("floor: one paced loopback write to 9,500 sockets (µs)",
             ["tcp-floor", "--n", 9500, "--count", 20, "--rate", 4],
             ["write.per_frame_us"]),
            ("phx-channels broadcast to 10,000 subscribers at 4/s",
             ["broadcast", "-n", 10000, "--count", 20, "--rate", 4, "--server-pid", spid],
             ["server_cpu.per_delivery_us", "last_subscriber_latency.p50_us", "latency.p50_us", "loss"]),
        ],
        "intercept": [
            ("phx-channels 1,000 intercepting subscribers at 50/s",
             ["broadcast", "-n", 1000, "--count", 150, "--rate", 50, "--topic", "bench_icpt:load",
              "--server-pid", spid],
             ["latency.p50_us", "latency.p99_us", "server_cpu.per_delivery_us", "loss"]),
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="echo,broadcast,intercept")
    parser.add_argument("--out", default="/tmp/bench_defaults.jsonl")
    parser.add_argument("--wrap", default="", help="a command to start the parity fixture under, e.g. 'taskset -c 0'")
    opts = parser.parse_args()
    raise_fd_limit()
    parity = start(["parity", "--port", str(PARITY_PORT)], opts.wrap.split())
    raw = start(["load", "raw-server", "--port", str(RAW_PORT), "--max-seconds", "3000"])
    results = {}
    try:
        wait_port(PARITY_PORT)
        wait_port(RAW_PORT)
        plan = measurements(parity.pid, raw.pid)
        with open(opts.out, "w") as out:
            for run in range(opts.runs):
                for name in opts.only.split(","):
                    for label, args, fields in plan[name]:
                        record = load(*args)
                        out.write(json.dumps(record) + "\n")
                        values = [pick(record, f) for f in fields]
                        results.setdefault(label, []).append(values)
                        print(f"run {run + 1} {label}: " + ", ".join(f"{f}={v}" for f, v in zip(fields, values)),
                              flush=True)
    finally:
        parity.terminate()
        raw.terminate()
    print("\nmedian (all runs)")
    for name in opts.only.split(","):
        for label, _, fields in measurements(0, 0)[name]:
            print(label)
            for i, field in enumerate(fields):
                values = [v[i] for v in results[label]]
                shown = ", ".join(f"{v:g}" for v in values)
                print(f"  {field}: {statistics.median(values):g} ({shown})")


if __name__ == "__main__":
    main()
