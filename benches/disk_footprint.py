#!/usr/bin/env python3
"""What memory-server keeps on disk for N precomputed vectors, and how long
it takes to start again from it (docs/benchmarks.md, "Against Chroma").

Per round and configuration (a binary and its environment): a fresh server
on an embedded store takes N random unit vectors of DIM dimensions with the
bodies `benches/versus_chroma.py` sends (text "vector i", metadata i and
g), in batches of 250 with two in flight; it is stopped with SIGTERM (it
snapshots on the way out); the data directory's files are measured; then a
second server starts on the same directory and the time until it is ready
is taken. Rounds alternate the configurations' order. Prints each round's
lines and the medians.

    python3 benches/disk_footprint.py N ROUNDS NAME=BINARY[,VAR=VALUE...] ...
    python3 benches/disk_footprint.py 100000 2 now=target/release/memory-server
"""

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

from benchproc import MIB, start_memory_server, stop

DIM = 384
BATCH = 250
GROUPS = 100
IN_FLIGHT = 2


def bodies(n, seed):
    rng = random.Random(seed)
    out = []
    for lo in range(0, n, BATCH):
        items = []
        for i in range(lo, min(lo + BATCH, n)):
            v = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
            norm = sum(x * x for x in v) ** 0.5
            vector = "[" + ",".join(f"{x / norm:.7g}" for x in v) + "]"
            items.append(f'{{"namespace":"bench","text":"vector {i}","vector":{vector},'
                         f'"metadata":{{"i":{i},"g":{i % GROUPS}}}}}')
        out.append(('{"memories":[' + ",".join(items) + "]}").encode())
    return out


def load(url, batches):
    def worker(part):
        for body in part:
            req = urllib.request.Request(url + "/v1/memories", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=300) as r:
                r.read()
    threads = [threading.Thread(target=worker, args=(batches[w::IN_FLIGHT],))
               for w in range(IN_FLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def files_mib(data):
    """Each file under `data` by name, in MiB, and their total."""
    sizes = {}
    for root, _, names in os.walk(data):
        for name in names:
            path = os.path.join(root, name)
            sizes[os.path.relpath(path, data)] = os.path.getsize(path) / MIB
    return sizes, sum(sizes.values())


def one_run(binary, env, batches):
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        proc, url = start_memory_server(binary, data, env)
        try:
            load(url, batches)
        finally:
            stop(proc)
        sizes, total = files_mib(data)
        began = time.perf_counter()
        proc, url = start_memory_server(binary, data, env)
        restart = time.perf_counter() - began
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=10) as r:
                json.load(r)
        finally:
            stop(proc)
    return sizes, total, restart


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    configs = []
    for arg in sys.argv[3:]:
        name, _, rest = arg.partition("=")
        binary, *pairs = rest.split(",")
        configs.append((name, binary, dict(p.split("=", 1) for p in pairs)))
    print(f"encoding {n} x {DIM} ...", flush=True)
    batches = bodies(n, 42)
    runs = {name: [] for name, _, _ in configs}
    for r in range(rounds):
        for name, binary, env in configs if r % 2 == 0 else list(reversed(configs)):
            sizes, total, restart = one_run(binary, env, batches)
            runs[name].append((total, restart))
            files = ", ".join(f"{k} {v:.1f}" for k, v in sorted(sizes.items()))
            print(f"round {r + 1} {name}: {total:.1f} MiB ({files}); ready again in {restart:.2f} s",
                  flush=True)
    print(f"\n{'configuration':<16} {'disk MiB':>9} {'restart s':>10}")
    for name, _, _ in configs:
        print(f"{name:<16} {statistics.median(t for t, _ in runs[name]):>9.1f} "
              f"{statistics.median(s for _, s in runs[name]):>10.2f}")


if __name__ == "__main__":
    main()
