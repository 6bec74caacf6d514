#!/usr/bin/env python3
"""The scale figures of BENCHMARKS.md: 100,000 joined channels on one node.

Checks the kernel settings the README's deployment section asks for, starts the parity
fixture at its defaults, and runs the load tool's `scale` mode: N connections x K
channels on K shared topics, for --cycles cycles (connect and join rates, memory per
channel, idle CPU, time from a broadcast on every topic to the last of the N x K
fastlane subscribers, teardown, and threads/fds/RSS after each cycle). With
--phoenix-url and --phoenix-pid the same runs go against a Phoenix server started
beforehand (the reference server is not part of this repository), and the table puts
the two side by side. Every run's JSON line is kept in --out.

Build first: cargo build --release --examples

    python3 scripts/bench_scale.py [--shapes 10000x10,50000x2] [--cycles 3] [--sources 127.0.0.1,127.0.0.2]
                                   [--phoenix-url ws://127.0.0.1:4990/bench/websocket --phoenix-pid PID]

Run it in a shell whose open-file limit covers the connections (`ulimit -n`), as root
for the sysctls (it only reads them and says what is short).
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples")
# What 100,000 channel threads need (README, "Deploying"): a pid and four mappings each.
SYSCTLS = {"vm.max_map_count": 1048576, "kernel.pid_max": 4194304, "kernel.threads-max": 1000000}


def sysctl(name):
    with open("/proc/sys/" + name.replace(".", "/")) as f:
        return int(f.read().split()[0])


def check_system(connections):
    """Says which setting is short for this run; returns whether any is."""
    short = False
    for name, wanted in SYSCTLS.items():
        have = sysctl(name)
        if have < wanted:
            print(f"note: {name} is {have}; the deployment section asks for {wanted} (sysctl -w {name}={wanted})")
            short = True
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < connections + 256:
        print(f"note: open files {soft} < {connections + 256} that {connections} connections need (ulimit -n)")
        short = True
    return short


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def run_load(args, out):
    cmd = [os.path.join(BIN, "load"), "scale"] + [str(a) for a in args]
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.startswith('{"')]
    if not lines:
        return None
    result = json.loads(lines[-1])
    out.write(lines[-1] + "\n")
    out.flush()
    return result


def start_ours(log, port):
    # The endpoint's caps at info, the rest at warn (every join is an info line).
    env = dict(os.environ, RUST_LOG="warn,phx_channels::endpoint=info")
    server = subprocess.Popen([os.path.join(BIN, "parity"), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    if not wait_port(port):
        server.kill()
        sys.exit("the parity fixture did not start")
    # The listener answers before every endpoint thread has started; the first cycle's
    # "before" counts them all.
    time.sleep(1)
    return server


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def fmt(value, unit="", digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def rows(result):
    """The table's rows for one run: (label, text)."""
    cycles = result["cycles"]
    first = cycles[0]
    n, k = result["connections"], result["channels_per_connection"]
    after = [c["server"]["after"] for c in cycles if c["server"]["after"]]
    before = cycles[0]["server"]["before"] or {}
    out = [
        ("channels joined", f'{first["joined"]:,} of {n * k:,}; refused {first["failed_joins"]:,}'),
        ("connections/s", fmt(median(c["connections_per_s"] for c in cycles))),
        ("joins/s", fmt(median(c["joins_per_s"] for c in cycles))),
        # A fresh server's: later cycles start from the memory the allocator kept.
        ("RSS per channel, all-in (first cycle)", fmt(first["rss_per_channel_all_in_kib"], " KiB", 1)),
        ("idle CPU, all joined", fmt(median(c["idle_cpu_ms_per_s"] for c in cycles), " ms/s", 1)),
        ("broadcast, time to the last subscriber, p50",
         fmt(median(c["broadcast_last_p50_s"] for c in cycles), " s", 3)),
        ("broadcast lost / duplicated", f'{sum(c["broadcast_lost"] for c in cycles)} / '
                                        f'{sum(c["broadcast_duplicates"] for c in cycles)}'),
        ("connections closed after a mass close", fmt(median(c["closed_s"] for c in cycles), " s", 2)),
        ("teardown: server quiet after a mass close", fmt(median(c.get("quiet_s") for c in cycles), " s", 2)),
        ("spare threads parked then", fmt(median(c.get("spare_threads") for c in cycles))),
        ("threads back to the start (spares retired)", fmt(median(c["teardown_s"] for c in cycles), " s", 2)),
        ("threads / fds / RSS before, after each cycle",
         f'{before.get("threads", "-")} / {before.get("fds", "-")} / {fmt(before.get("rss_kib"), " KiB")}; '
         + "; ".join(f'{a["threads"]} / {a["fds"]} / {fmt(a["rss_kib"], " KiB")}' for a in after)),
    ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="10000x10", help="CONNECTIONSxCHANNELS,... (default 10000x10)")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--port", type=int, default=4807, help="the parity fixture's port")
    parser.add_argument("--rounds", type=int, default=5, help="broadcast rounds per cycle")
    parser.add_argument("--threads", type=int, default=2, help="client event loops")
    parser.add_argument("--sources", help="local addresses to connect from, in turn (127.0.0.1,127.0.0.2,...): "
                        "each has its own ephemeral ports")
    parser.add_argument("--phoenix-url", help="the reference Phoenix server's ws:// URL of /bench/websocket")
    parser.add_argument("--phoenix-pid", type=int, help="its BEAM's PID, for memory and CPU")
    parser.add_argument("--out", default="bench_scale.jsonl")
    opts = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in opts.shapes.split(",")]
    results = {}
    with open(opts.out, "a") as out:
        for n, k in shapes:
            check_system(n)
            common = ["-n", n, "-k", k, "--cycles", opts.cycles, "--rounds", opts.rounds, "--threads", opts.threads,
                      "--timeout", 300] + (["--sources", opts.sources] if opts.sources else [])
            log_path = opts.out + ".server.log"
            with open(log_path, "w") as log:
                server = start_ours(log, opts.port)
                try:
                    results[("phx-channels", n, k)] = run_load(
                        common + ["--url", f"ws://127.0.0.1:{opts.port}/bench/websocket", "--server-pid", server.pid], out)
                finally:
                    server.terminate()
                    server.wait(timeout=120)
            with open(log_path) as log:
                for line in log.read().splitlines()[:20]:
                    print("server: " + line)
            if opts.phoenix_url:
                pid = ["--server-pid", opts.phoenix_pid] if opts.phoenix_pid else []
                results[("Phoenix", n, k)] = run_load(common + ["--url", opts.phoenix_url] + pid, out)
    for n, k in shapes:
        servers = [s for s in ("phx-channels", "Phoenix") if results.get((s, n, k))]
        if not servers:
            continue
        print(f"\n{n:,} connections x {k} channels ({n * k:,} channels), {opts.cycles} cycles; medians over cycles\n")
        print("| | " + " | ".join(servers) + " |")
        print("|---|" + "---:|" * len(servers))
        table = [rows(results[(s, n, k)]) for s in servers]
        for i, (label, _) in enumerate(table[0]):
            print(f"| {label} | " + " | ".join(t[i][1] for t in table) + " |")


if __name__ == "__main__":
    main()
