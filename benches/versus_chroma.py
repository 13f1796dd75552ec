#!/usr/bin/env python3
"""memory-server and Chroma side by side on the same vectors
(docs/benchmarks.md, "Against Chroma"). Run it through `benches/versus-chroma`,
which puts Chroma from PyPI in a cached venv and runs this with that venv's
Python (numpy comes with Chroma).

Per round, each system in turn (the order flips every round, so drift and a
warm page cache hit both alike), on a fresh data directory:

1. start it (memory-server: release binary, the repository's config with
   each --config's overrides, each configuration a system of its own; Chroma: `chroma run`, collection with its
   default HNSW and cosine distance);
2. load the dataset's base vectors precomputed, in batches of 250 (under memory-server's 2 MiB body limit), two
   batches in flight; each memory carries `metadata {i, g}` with g = i % 100;
3. search: concurrency 1, concurrency 8, and concurrency 8 with a filter on
   one value of g (1 % of the memories); each for --secs seconds, cycling
   through the dataset's queries, top 10; recall@10 is graded against the
   exact neighbours (the filtered ones computed here);
4. read RSS (the server's whole process tree) and the data directory's size,
   stop it, read the size again.

Each search phase also reads the server's CPU time (its process tree, from
/proc) before and after: CPU ms per query is what a query costs the server
whatever the client costs, and cores busy says how much of the machine the
server got while the clients shared it. The Python clients' own CPU per
query (their processes' time, read once they are reaped) says how much of
the shared cores the load itself took.

Every request body is encoded before the clock starts and the clients are
separate processes (one keep-alive connection each), so the client's Python
costs as little as it can; it still shares the 2 cores with the server, the
same for both systems. Prints one JSON line per system and round, then a
table of medians and ratios.

With --light-client, each system also takes concurrency 8 from
`orchestra-bench replay` (the same bodies, sent by a Rust client that
costs the shared cores far less than eight Python processes), unfiltered
and 1 %-filtered, after the phases above; those figures are reported in
their own rows.

With --pinned, each system also takes concurrency 8 from the Python clients
with the server's threads bound to CPU 0 and the clients to CPU 1, after
the phases above: each side has a core of its own, so the clients cannot
take the server's share (on two cores this is the load generator on its own
machine, as far as one machine allows).

    benches/versus-chroma SERVER_BIN DATASET_DIR [--rounds 3] [--secs 15] \\
        [--chroma-cache] [--config NAME[@BIN]=ORCHESTRA__KEY=VALUE[,...] ...] \\
        [--light-client target/release/orchestra-bench] [--pinned]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import tempfile
import time

import numpy as np

from benchproc import (ann_dataset, dir_mib, free_port, pin_tree, start_memory_server, stop,
                       tree_cpu_secs, tree_rss, wait_ready)

NAMESPACE = "bench"
COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"
BATCH = 250
LOADERS = 2
GROUPS = 100
TOP_K = 10


def filtered_truth(base, queries):
    """Exact top-10 of query q among the memories with g == q % GROUPS (cosine)."""
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    out = []
    for q, v in enumerate(queries):
        rows = np.arange(q % GROUPS, len(base), GROUPS)
        sims = unit[rows] @ (v / np.linalg.norm(v))
        out.append(rows[np.argsort(-sims)[:TOP_K]])
    return np.array(out)


def vector_json(v):
    # Seven significant digits: what a float32 holds, and half the bytes of repr.
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


class MemoryServer:
    """memory-server's REST API."""

    def __init__(self, name, binary, env):
        self.name, self.binary, self.env = name, binary, env

    def start(self, data):
        self.proc, url = start_memory_server(self.binary, data, self.env)
        self.port = int(url.rsplit(":", 1)[1])

    def load_bodies(self, vectors):
        bodies = []
        for lo in range(0, len(vectors), BATCH):
            items = [
                f'{{"namespace":"{NAMESPACE}","text":"vector {i}","vector":{vectors[i]},'
                f'"metadata":{{"i":{i},"g":{i % GROUPS}}}}}'
                for i in range(lo, min(lo + BATCH, len(vectors)))
            ]
            bodies.append(("/v1/memories", '{"memories":[' + ",".join(items) + "]}"))
        return bodies

    def query_body(self, vector, group):
        where = "" if group is None else f',"filter":{{"metadata":{{"g":{group}}}}}'
        # What Chroma is asked to include (documents, metadatas, distances):
        # each hit's text and metadata, with its score.
        return ("/v1/memories/search?fields=text,metadata",
                f'{{"namespace":"{NAMESPACE}","vector":{vector},"mode":"vector",'
                f'"top_k":{TOP_K}{where}}}')

    @staticmethod
    def returned(answer):
        return [r["memory"]["metadata"]["i"] for r in answer["results"]]


# Chroma's collection cache (its frontend keeps each collection with its
# segments in an LRU instead of reading them from SQLite per request), as
# its distributed sample configurations set it; `chroma run` takes the
# settings of a YAML file.
CHROMA_CACHE_YAML = """persist_path: "{data}"
listen_address: "127.0.0.1"
port: {port}
collections_with_segments_provider:
  cache:
    lru:
      name: "collections_with_segments_cache"
      capacity: 1000
  cache_ttl_secs: 3600
  permitted_parallelism: 180
  cache_invalidation_retry_policy:
    delay_ms: 0
    max_retries: 3
"""


class Chroma:
    """Chroma's v2 HTTP API, its server started by `chroma run`, with its
    defaults or (`cached`) with its collection cache."""

    def __init__(self, chroma_bin, cached=False):
        self.chroma_bin, self.cached = chroma_bin, cached
        self.name = "chroma-cache" if cached else "chroma"

    def start(self, data):
        self.port = free_port()
        if self.cached:
            config = os.path.join(os.path.dirname(data), "chroma.yaml")
            with open(config, "w") as f:
                f.write(CHROMA_CACHE_YAML.format(data=data, port=self.port))
            command = [self.chroma_bin, "run", config]
        else:
            command = [self.chroma_bin, "run", "--path", data, "--host", "127.0.0.1",
                       "--port", str(self.port)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_ready(self.proc, f"http://127.0.0.1:{self.port}/api/v2/heartbeat",
                   lambda r: True, "chroma")
        # Its default HNSW (M 16, ef_construction 100, ef_search 100), cosine
        # as memory-server's.
        created = request(self.port, COLLECTIONS, json.dumps(
            {"name": NAMESPACE, "configuration": {"hnsw": {"space": "cosine"}}}))
        self.path = f"{COLLECTIONS}/{created['id']}"

    def load_bodies(self, vectors):
        bodies = []
        for lo in range(0, len(vectors), BATCH):
            ids = range(lo, min(lo + BATCH, len(vectors)))
            body = (
                '{"ids":[' + ",".join(f'"{i}"' for i in ids) + "],"
                '"embeddings":[' + ",".join(vectors[i] for i in ids) + "],"
                '"documents":[' + ",".join(f'"vector {i}"' for i in ids) + "],"
                '"metadatas":[' + ",".join(f'{{"i":{i},"g":{i % GROUPS}}}' for i in ids) + "]}"
            )
            bodies.append(("/add", body))
        return bodies

    def query_body(self, vector, group):
        where = "" if group is None else f',"where":{{"g":{group}}}'
        return ("/query", f'{{"query_embeddings":[{vector}],"n_results":{TOP_K}{where},'
                f'"include":["metadatas","documents","distances"]}}')

    @staticmethod
    def returned(answer):
        return [int(i) for i in answer["ids"][0]]


def request(port, path, body, conn=None):
    """POSTs `body` and returns the JSON answer; a non-2xx status is fatal."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=body.encode(), headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    data = resp.read()
    if resp.status // 100 != 2:
        raise SystemExit(f"POST {path}: {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


# What the client processes read, set before they fork.
SHARED = {}


def load_worker(args):
    worker, = args
    system, bodies = SHARED["system"], SHARED["load"]
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=300)
    prefix = getattr(system, "path", "")
    for path, body in bodies[worker::LOADERS]:
        request(system.port, prefix + path, body, conn)


def search_worker(args):
    worker, secs = args
    system, bodies, truth = SHARED["system"], SHARED["queries"], SHARED["truth"]
    conn = http.client.HTTPConnection("127.0.0.1", system.port, timeout=60)
    prefix = getattr(system, "path", "")
    latencies, hits, graded = [], 0, 0
    q = worker * 7919 % len(bodies)
    end = time.perf_counter() + secs
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        path, body = bodies[q]
        answer = request(system.port, prefix + path, body, conn)
        latencies.append(time.perf_counter() - t0)
        got = set(system.returned(answer))
        hits += sum(1 for i in truth[q] if int(i) in got)
        graded += len(truth[q])
        q = (q + 1) % len(bodies)
    return latencies, hits, graded


def search(system, bodies, truth, concurrency, secs):
    """(QPS, p50 ms, p99 ms, recall@10, the server's CPU per query and in
    cores) of `concurrency` clients for `secs`."""
    SHARED.update(system=system, queries=bodies, truth=truth)
    clients0 = children_cpu_secs()
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        # The server's CPU time is read around the clients' whole run: what
        # the server spends per query, whoever else shares the cores.
        cpu0, t0 = tree_cpu_secs(system.proc.pid), time.perf_counter()
        parts = pool.map(search_worker, [(w, secs) for w in range(concurrency)])
        cpu, wall = tree_cpu_secs(system.proc.pid) - cpu0, time.perf_counter() - t0
    # The pool's processes are reaped on leaving the block: their CPU time
    # (with the pool's start and stop, a few ms) is now the children's.
    clients = children_cpu_secs() - clients0
    latencies = sorted(x for part in parts for x in part[0])
    hits = sum(p[1] for p in parts)
    graded = sum(p[2] for p in parts)
    pick = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000
    return {"qps": len(latencies) / secs, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "recall": hits / max(graded, 1),
            "server_cpu_ms_per_query": cpu * 1000 / max(len(latencies), 1),
            "server_cores": cpu / wall,
            "client_cpu_ms_per_query": clients * 1000 / max(len(latencies), 1)}


def children_cpu_secs():
    """User and system CPU seconds of this process's reaped children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def replay(system, bodies, concurrency, secs, client):
    """search()'s figures but recall, from `orchestra-bench replay` (`client`):
    a Rust client that costs the shared cores far less than Python's, so
    QPS says more of the server and less of the client."""
    prefix = getattr(system, "path", "")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
        for path, body in bodies:
            f.write(json.dumps([prefix + path, body]) + "\n")
        f.flush()
        cpu0, t0 = tree_cpu_secs(system.proc.pid), time.perf_counter()
        out = subprocess.run(
            [client, "replay", "--url", f"http://127.0.0.1:{system.port}", "--bodies", f.name,
             "--concurrency", str(concurrency), "--secs", str(secs)],
            check=True, capture_output=True, text=True)
        cpu, wall = tree_cpu_secs(system.proc.pid) - cpu0, time.perf_counter() - t0
    r = json.loads(out.stdout)
    return {"qps": r["qps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
            "server_cpu_ms_per_query": cpu * 1000 / max(r["requests"], 1),
            "server_cores": cpu / wall}


def load(system, vectors):
    """Loads `vectors` (JSON-encoded) into the started `system`, `LOADERS`
    clients in batches of `BATCH`, and returns documents per second."""
    SHARED.update(system=system, load=system.load_bodies(vectors))
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(LOADERS) as pool:
        pool.map(load_worker, [(w,) for w in range(LOADERS)])
    del SHARED["load"]
    return len(vectors) / (time.perf_counter() - t0)


def pinned_search(system, bodies, truth, concurrency, secs):
    """search() with the server's threads on CPU 0 and this process (so its
    clients, forked after) on CPU 1; every CPU again afterwards."""
    everything = os.sched_getaffinity(0)
    if not {0, 1} <= everything:
        raise SystemExit(f"--pinned needs CPUs 0 and 1; this process may use {sorted(everything)}")
    pin_tree(system.proc.pid, {0})
    os.sched_setaffinity(0, {1})
    try:
        return search(system, bodies, truth, concurrency, secs)
    finally:
        os.sched_setaffinity(0, everything)
        pin_tree(system.proc.pid, everything)


def measure(system, vectors, queries, truth, ftruth, secs, client=None, pinned=False):
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        os.makedirs(data)
        system.start(data)
        try:
            row = {"system": system.name, "load_per_sec": load(system, vectors)}
            plain = [system.query_body(v, None) for v in queries]
            filtered = [system.query_body(v, q % GROUPS) for q, v in enumerate(queries)]
            search(system, plain, truth, 2, 3)  # warm-up
            row["c1"] = search(system, plain, truth, 1, secs)
            row["c8"] = search(system, plain, truth, 8, secs)
            row["filtered_c8"] = search(system, filtered, ftruth, 8, secs)
            if pinned:
                row["c8_pinned"] = pinned_search(system, plain, truth, 8, secs)
            if client:
                row["c8_light"] = replay(system, plain, 8, secs, client)
                row["filtered_c8_light"] = replay(system, filtered, 8, secs, client)
            row["rss_mib"] = tree_rss(system.proc.pid)
            row["disk_running_mib"] = dir_mib(data)
        finally:
            stop(system.proc)
        row["disk_stopped_mib"] = dir_mib(data)
        return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server")
    ap.add_argument("dataset")
    ap.add_argument("--chroma", default="chroma", help="the `chroma` command")
    ap.add_argument("--chroma-cache", action="store_true",
                    help="also measure Chroma with its collection cache; ratios are "
                         "then against the better of its two configurations")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--config", action="append", default=[],
                    metavar="NAME[@BIN]=ORCHESTRA__KEY=VALUE[,...]",
                    help="a memory-server configuration to measure (repeatable; "
                         "default: one, the repository's config as it is); "
                         "@BIN runs that binary instead of SERVER_BIN")
    ap.add_argument("--light-client", metavar="ORCHESTRA_BENCH",
                    help="also measure concurrency 8 with `orchestra-bench replay` "
                         "(a Rust client) at this path, after the Python clients' phases")
    ap.add_argument("--pinned", action="store_true",
                    help="also measure the Python clients' concurrency 8 with the server "
                         "bound to CPU 0 and the clients to CPU 1")
    args = ap.parse_args()

    base, queries, truth = ann_dataset(args.dataset, TOP_K)
    print(f"encoding {len(base)} vectors ...", flush=True)
    vectors = [vector_json(v) for v in base]
    qvectors = [vector_json(v) for v in queries]
    ftruth = filtered_truth(base, queries)
    server = os.path.abspath(args.server)
    chromas = [Chroma(args.chroma)] + ([Chroma(args.chroma, cached=True)]
                                       if args.chroma_cache else [])
    systems = list(chromas)
    for spec in args.config or ["memory-server="]:
        name, _, assignments = spec.partition("=")
        # NAME@BIN measures another build (e.g. the commit before) in the same run.
        name, _, binary = name.partition("@")
        env = dict(a.split("=", 1) for a in assignments.split(",") if a)
        systems.insert(len(systems) - len(chromas),
                       MemoryServer(name, os.path.abspath(binary) if binary else server, env))
    rows = []
    for r in range(args.rounds):
        for system in systems if r % 2 == 0 else systems[::-1]:
            row = measure(system, vectors, qvectors, truth, ftruth, args.secs,
                          args.light_client and os.path.abspath(args.light_client), args.pinned)
            row["round"] = r
            print(json.dumps(row), flush=True)
            rows.append(row)
    report(rows, [s.name for s in systems], len(chromas))


def report(rows, names, chromas):
    """Medians per system, and each memory-server configuration over the
    better of Chroma's configurations (the last `chromas` systems) per figure."""
    # (label, figure, whether more is better; None: no ratio, only a reading)
    figures = [
        ("search QPS, concurrency 1", lambda r: r["c1"]["qps"], True),
        ("search QPS, concurrency 8", lambda r: r["c8"]["qps"], True),
        ("p99 ms, concurrency 8", lambda r: r["c8"]["p99_ms"], False),
        ("server CPU ms per query, concurrency 8", lambda r: r["c8"]["server_cpu_ms_per_query"],
         False),
        ("server cores busy, concurrency 8", lambda r: r["c8"]["server_cores"], None),
        ("Python clients' CPU ms per query, concurrency 8",
         lambda r: r["c8"]["client_cpu_ms_per_query"], None),
        ("1 %-filtered QPS, concurrency 8", lambda r: r["filtered_c8"]["qps"], True),
        ("QPS, concurrency 8, pinned: server on CPU 0, Python clients on CPU 1",
         lambda r: r["c8_pinned"]["qps"], True),
        ("p99 ms, concurrency 8, pinned", lambda r: r["c8_pinned"]["p99_ms"], False),
        ("server CPU ms per query, concurrency 8, pinned",
         lambda r: r["c8_pinned"]["server_cpu_ms_per_query"], False),
        ("server cores busy, concurrency 8, pinned", lambda r: r["c8_pinned"]["server_cores"],
         None),
        ("QPS, concurrency 8, Rust client", lambda r: r["c8_light"]["qps"], True),
        ("p99 ms, concurrency 8, Rust client", lambda r: r["c8_light"]["p99_ms"], False),
        ("server CPU ms per query, concurrency 8, Rust client",
         lambda r: r["c8_light"]["server_cpu_ms_per_query"], False),
        ("server cores busy, concurrency 8, Rust client", lambda r: r["c8_light"]["server_cores"],
         None),
        ("1 %-filtered QPS, concurrency 8, Rust client", lambda r: r["filtered_c8_light"]["qps"],
         True),
        ("1 %-filtered server CPU ms per query, concurrency 8, Rust client",
         lambda r: r["filtered_c8_light"]["server_cpu_ms_per_query"], False),
        ("batched load, docs/s", lambda r: r["load_per_sec"], True),
        ("recall@10", lambda r: r["c1"]["recall"], True),
        ("recall@10, 1 %-filtered", lambda r: r["filtered_c8"]["recall"], True),
        ("RSS after load, MiB", lambda r: r["rss_mib"], False),
        ("data on disk after stop, MiB", lambda r: r["disk_stopped_mib"], False),
    ]
    ours = names[:-chromas]
    ratios = [f"{n} / best chroma" for n in ours]
    print(f"\n| figure (median of {len(rows) // len(names)}) | " + " | ".join(names + ratios) + " |")
    print("|---|" + "---|" * (len(names) + len(ratios)))
    for label, f, more_is_better in figures:
        if "Rust client" in label and not all("filtered_c8_light" in r for r in rows):
            continue
        if "pinned" in label and not all("c8_pinned" in r for r in rows):
            continue
        meds = [statistics.median(f(r) for r in rows if r["system"] == n) for n in names]
        best = None if more_is_better is None else (max if more_is_better else min)(
            meds[len(ours):])
        cells = " | ".join(f"{m:.3f}" if m < 2 else f"{m:.3g}" if m < 100 else f"{m:,.0f}"
                           for m in meds)
        ratios = " | ".join(f"{m / best:.2f}×" if best else "–" for m in meds[:len(ours)])
        print(f"| {label} | {cells} | {ratios} |")


if __name__ == "__main__":
    main()
