#!/usr/bin/env python3
"""The default-settings benchmarks of BENCHMARKS.md, as a user runs them.

Starts the parity fixture and the plain tungstenite echo server at their defaults (no
pinning, the normal scheduler), then runs each measurement --runs times, interleaved
with its floor, and prints the medians and ranges. With --before BIN, a second parity
fixture (another build, say the previous release) is measured in the same rounds, right
after this one. Every run's JSON line is kept in --out.
Build first: cargo build --release --all-features --examples

    python3 scripts/bench_defaults.py [--runs 3] [--only echo,echo1,broadcast,intercept]
                                      [--before PATH/TO/parity] [--wrap CMD]
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples")
RAW_PORT, PARITY_PORT, BEFORE_PORT = 4900, 4807, 4808

# Each group: (label, who serves it: "floor" (the raw server or none) or "phx" (every parity
# fixture), the load tool's arguments, the fields reported). Run in this order each round.
# wake-floor runs under SCHED_BATCH, as the server's channel threads do.
GROUPS = {
    "echo": [
        ("tungstenite echo, 50 connections", "floor",
         ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 50, "--duration", 5],
         ["server_cpu.per_round_trip_us", "latency.p50_us"]),
        ("echo, 50 connections", "phx", ["echo", "-c", 50, "--duration", 5],
         ["server_cpu.per_round_trip_us", "latency.p50_us"]),
    ],
    "echo1": [
        ("tungstenite echo, 1 connection", "floor",
         ["raw-echo", "--url", f"ws://127.0.0.1:{RAW_PORT}/", "-c", 1, "--duration", 5],
         ["latency.p50_us", "latency.p99_us"]),
        ("echo, 1 connection", "phx", ["echo", "-c", 1, "--duration", 5], ["latency.p50_us", "latency.p99_us"]),
    ],
    "broadcast": [
        ("one paced loopback write, 9,500 sockets", "floor", ["tcp-floor", "--n", 9500, "--count", 20, "--rate", 4],
         ["write.per_frame_us"]),
        ("broadcast to 10,000 subscribers at 4/s", "phx", ["broadcast", "-n", 10000, "--count", 20, "--rate", 4],
         ["server_cpu.per_delivery_us", "last_subscriber_latency.p50_us", "latency.p50_us", "loss"]),
    ],
    "intercept": [
        ("one thread wake and park, 1,000 threads at 50/s", "floor",
         ["wake-floor", "--threads", 1000, "--rounds", 150, "--rate", 50], ["per_wake_us"]),
        ("one paced loopback write, 1,000 sockets at 50/s", "floor",
         ["tcp-floor", "--n", 1000, "--count", 150, "--rate", 50], ["write.per_frame_us"]),
        ("1,000 intercepting subscribers at 50/s", "phx",
         ["broadcast", "-n", 1000, "--count", 150, "--rate", 50, "--topic", "bench_icpt:load"],
         ["latency.p50_us", "latency.p99_us", "server_cpu.per_delivery_us", "loss"]),
    ],
}


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(20000, hard), hard))


def start(command):
    """Starts a server that bounds its own life; returns its process."""
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)


def wait_port(port, process):
    """Waits until `process` listens on `port`. A server that exits at once most likely
    found the port taken, and whatever holds it must not be measured in its place."""
    for _ in range(100):
        if process.poll() is not None:
            sys.exit(f"{' '.join(process.args)} exited with {process.returncode}: is port {port} taken?")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        time.sleep(0.2)
        if process.poll() is None:
            return
    sys.exit(f"nothing listens on {port}")


def load(args):
    """Runs the load tool; returns its final JSON line."""
    command = [os.path.join(BIN, "load")] + [str(a) for a in args]
    if args[0] == "wake-floor":
        command = ["chrt", "-b", "0"] + command
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=raise_fd_limit)
    lines = [line for line in out.stdout.splitlines() if line.startswith('{"')]
    if out.returncode != 0 or not lines:
        sys.exit(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1])


def threads_of(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def settle(servers, idle_threads):
    """Waits (at most 30 s) until every server is back to its idle thread count: the
    channel threads of the last run's 10,000 subscribers take about a second to end."""
    deadline = time.time() + 30
    while time.time() < deadline and any(threads_of(p.pid) > idle_threads[p.pid] for p in servers):
        time.sleep(0.2)
    time.sleep(0.5)


def pick(record, path):
    for key in path.split("."):
        record = record[key]
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="echo,echo1,broadcast,intercept")
    parser.add_argument("--out", default="/tmp/bench_defaults.jsonl")
    parser.add_argument("--before", help="another build of the parity fixture, measured in the same rounds")
    parser.add_argument("--wrap", default="", help="a command to start the parity fixtures under, e.g. 'taskset -c 0'")
    opts = parser.parse_args()
    raise_fd_limit()
    groups = opts.only.split(",")
    raw = start([os.path.join(BIN, "load"), "raw-server", "--port", str(RAW_PORT), "--max-seconds", "3000"])
    servers = [("phx-channels", os.path.join(BIN, "parity"), PARITY_PORT)]
    if opts.before:
        servers.append(("before", opts.before, BEFORE_PORT))
    # (name, process, port); the wrapper must exec the server, so that its pid is the server's.
    started = [(name, start(opts.wrap.split() + [path, "--port", str(port)]), port) for name, path, port in servers]
    results = {}
    try:
        for _, process, port in [("floor", raw, RAW_PORT)] + started:
            wait_port(port, process)
        servers = [process for _, process, _ in started]
        idle_threads = {process.pid: threads_of(process.pid) for process in servers}
        with open(opts.out, "w") as out:
            for run in range(opts.runs):
                for group in groups:
                    for label, who, args, fields in GROUPS[group]:
                        if who == "floor":
                            targets = [("floor", args + (["--server-pid", raw.pid] if "--url" in args else []))]
                        else:
                            targets = [(name, args + ["--url", f"ws://127.0.0.1:{port}/bench/websocket",
                                                      "--server-pid", process.pid])
                                       for name, process, port in started]
                        for name, target_args in targets:
                            settle(servers, idle_threads)
                            record = load(target_args)
                            record["bench"] = {"run": run + 1, "label": label, "server": name}
                            out.write(json.dumps(record) + "\n")
                            values = [pick(record, field) for field in fields]
                            results.setdefault((label, name), []).append(values)
                            shown = ", ".join(f"{field}={value}" for field, value in zip(fields, values))
                            print(f"run {run + 1} {name}: {label}: {shown}", flush=True)
    finally:
        for _, process, _ in started:
            process.terminate()
        raw.terminate()
    print("\nmedian (every run)")
    for group in groups:
        for label, who, _, fields in GROUPS[group]:
            for name in ["floor"] if who == "floor" else [name for name, _, _ in started]:
                print(f"{name}: {label}")
                for i, field in enumerate(fields):
                    values = [v[i] for v in results[(label, name)]]
                    shown = ", ".join(f"{v:g}" for v in values)
                    print(f"  {field}: {statistics.median(values):g} ({shown})")


if __name__ == "__main__":
    main()
