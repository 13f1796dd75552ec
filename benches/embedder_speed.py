#!/usr/bin/env python3
"""What the local embedder costs against the built-in one, through the HTTP
API of the release server (docs/benchmarks.md, "The local embedder").

Starts one memory-server per embedder on an embedded store, then alternates
rounds between them: a round stores BATCHES x 100 new texts (POST
/v1/memories, batched) and runs SEARCHES text searches of distinct queries
one at a time (so every query is embedded: nothing comes from the vector
cache). Reports per embedder the median over rounds of: stored texts per
second, and search latency p50 / p95 seen by the client.

    python3 benches/embedder_speed.py target/release/memory-server MODEL_DIR [ROUNDS]
"""

import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request

from benchproc import start_memory_server

BATCHES = 5
SEARCHES = 200
WORDS = ("garden tomatoes deploy staging invoice marathon cello Lisbon shelter beagle "
         "quarterly budget physiotherapist knees risotto novel harbour flat commute "
         "birthday scarf telescope climbing kayak swing jazz folk sunrise bridge").split()


def call(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) + f" {rng.random():.6f}"


def one_round(url, rng, ns):
    stored = 0
    began = time.perf_counter()
    for _ in range(BATCHES):
        call(url, "/v1/memories", {"memories": [{"namespace": ns, "text": sentence(rng)}
                                                for _ in range(100)]})
        stored += 100
    rate = stored / (time.perf_counter() - began)
    took = []
    for _ in range(SEARCHES):
        q = sentence(rng)
        t = time.perf_counter()
        call(url, "/v1/memories/search", {"namespace": ns, "query": q, "top_k": 10})
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return rate, took[len(took) // 2], took[int(len(took) * 0.95)]


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, model_dir = argv[1], argv[2]
    rounds = int(argv[3]) if len(argv) > 3 else 3
    embedders = {
        "builtin": {},
        "local": {"ORCHESTRA__EMBEDDER__PROVIDER": "local",
                  "ORCHESTRA__EMBEDDER__MODEL_DIR": model_dir},
    }
    work = tempfile.mkdtemp(prefix="embedder-speed-")
    servers = {name: start_memory_server(binary, os.path.join(work, name, "data"), env)
               for name, env in embedders.items()}
    results = {name: [] for name in embedders}
    try:
        for r in range(rounds):
            for name, (_, url) in servers.items():
                rng = random.Random(r)
                results[name].append(one_round(url, rng, f"speed-{r}"))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    print(f"{'embedder':<10} {'stored/s':>9} {'search p50 ms':>14} {'p95 ms':>8}  (median of {rounds} rounds)")
    med = {}
    for name, rows in results.items():
        med[name] = [statistics.median(col) for col in zip(*rows)]
        rate, p50, p95 = med[name]
        print(f"{name:<10} {rate:>9.0f} {p50:>14.2f} {p95:>8.2f}")
    b, l = med["builtin"], med["local"]
    print(f"local/builtin: stored/s x{l[0] / b[0]:.3f}, search p50 x{l[1] / b[1]:.1f}, p95 x{l[2] / b[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
