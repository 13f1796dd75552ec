#!/usr/bin/env python3
"""Where memory-server's memory and disk go, per configuration
(docs/benchmarks.md, "Where the memory goes").

For each round and each configuration (alternating, so drift hits all
alike): a fresh data directory, a release server with the configuration's
environment, then `orchestra-bench run SCENARIO` (the `recall` scenario loads
the ANN dataset's vectors through the HTTP API and searches them for
--duration seconds). Then it reads the server's RSS and peak RSS
(/proc/PID/status), the index's own gauges (/metrics: graph and keyword
bytes), and each data file's size; stops the server (SIGTERM: it snapshots),
reads the files again, starts it once more on the same directory and reads
its RSS after the restart. Prints one JSON object per run and, at the end,
the medians per configuration.

    python3 benches/footprint.py SERVER_BIN BENCH_BIN SCENARIO ROUNDS \\
        NAME=ENV=VALUE[,ENV=VALUE...] [NAME=...]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchproc import MIB, start_memory_server as start, status, stop


def gauges(url):
    """The index's own size gauges, in MiB."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        for name in ("memory_index_graph_bytes", "memory_index_keyword_bytes"):
            if line.startswith(name + " "):
                out[name.removeprefix("memory_index_")] = float(line.split()[1]) / MIB
    return out


def files(data):
    """Each data file's size in MiB, the big ones by name, the rest summed."""
    sizes = {}
    for name in os.listdir(data):
        size = os.path.getsize(os.path.join(data, name)) / MIB
        key = name if name.startswith("memories-") else "other collections"
        sizes[key] = sizes.get(key, 0) + size
    sizes["total"] = sum(sizes.values())
    return sizes


def run(server, bench, scenario, duration, name, env):
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        proc, url = start(server, data, env)
        report = os.path.join(work, "report.json")
        subprocess.run([bench, "run", scenario, "--url", url, "--quiet",
                        "--duration", str(duration), "--json", report], check=True,
                       stdout=subprocess.DEVNULL)
        with open(report) as f:
            bench_report = json.load(f)
        row = {"config": name, "loaded": status(proc.pid), **gauges(url),
               "files_running": files(data)}
        stop(proc)
        row["files_stopped"] = files(data)
        proc, url = start(server, data, env)
        time.sleep(2)
        row["restarted"] = status(proc.pid)
        stop(proc)
        row["bench"] = summary(bench_report)
        return row


def summary(report):
    """The figures of an orchestra-bench report worth keeping here."""
    keep = {"preload_per_sec": report["setup"]["memories"] / max(report["setup"]["secs"], 1e-9)}
    for name, op in report["operations"].items():
        keep[name] = {"per_sec": op["throughput"], "p50_ms": op["latency_ms"]["p50"],
                      "p99_ms": op["latency_ms"]["p99"], "recall": op.get("recall")}
    return keep


def main():
    server, bench, scenario, rounds = sys.argv[1:5]
    configs = []
    for spec in sys.argv[5:]:
        name, _, assignments = spec.partition("=")
        env = dict(a.split("=", 1) for a in assignments.split(",") if a)
        configs.append((name, env))
    rows = []
    for _ in range(int(rounds)):
        for name, env in configs:
            row = run(server, bench, scenario, 10, name, env)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\nmedians (MiB)")
    for name, _ in configs:
        mine = [r for r in rows if r["config"] == name]
        med = lambda f: statistics.median(f(r) for r in mine)
        print(f"{name}: RSS loaded {med(lambda r: r['loaded']['VmRSS']):.0f}, "
              f"peak {med(lambda r: r['loaded']['VmHWM']):.0f}, "
              f"after restart {med(lambda r: r['restarted']['VmRSS']):.0f}; "
              f"graph {med(lambda r: r.get('graph_bytes', 0)):.0f}, "
              f"keyword {med(lambda r: r.get('keyword_bytes', 0)):.0f}; "
              f"disk running {med(lambda r: r['files_running']['total']):.0f}, "
              f"stopped {med(lambda r: r['files_stopped']['total']):.0f}")


if __name__ == "__main__":
    main()
