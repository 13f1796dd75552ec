#!/usr/bin/env python3
"""ann-bench's single-thread search against hnswlib in the same run
(docs/benchmarks.md, "Single thread against hnswlib"). Run it through
`benches/versus-hnswlib`, which puts hnswlib from PyPI in a cached venv.

Per round, alternating: hnswlib, then ann-bench on usearch at each
quantization asked (f32 and f16 by default), all with the same graph
parameters (M, ef_construction) and the same search widths, on an ann-bench
dataset directory. hnswlib's queries go one batch call per width on one
thread (no per-query Python overhead: its best case), its p99 from a
per-query loop (which does include Python's call). Prints one JSON line per
system, round and width, then per system the QPS at the first width whose
recall@10 reaches the target (0.95), medians over rounds.

With --paired the systems run side by side instead: one hnswlib index in
this process and one `ann-bench --serve` process per quantization, every
slice of 20 queries asked of each in turn (the order turning from slice to
slice), so a machine whose speed moves from second to second slows them
alike; each system's QPS is the median over the rounds, its speed against
hnswlib the median of the per-round ratios, with their range. Without it,
separate runs on a noisy VM can differ by 2× from one minute to the next.

    benches/versus-hnswlib target/release/ann-bench DATASET_DIR [--rounds 2] [--paired]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import hnswlib
import numpy as np

from benchproc import ann_dataset

TOP_K = 10
# Queries per turn in --paired mode: a few milliseconds of searching.
SLICE = 20


def recall(found, truth):
    return hits_in(found, truth) / (len(found) * TOP_K)


def hits_in(found, truth):
    """How many of each query's exact top TOP_K its answer holds, summed."""
    return sum(len(set(f) & set(t[:TOP_K])) for f, t in zip(found, truth))


def hnswlib_index(base, m, ef_construction):
    """hnswlib's cosine index of `base`, built on two threads, and the seconds it took."""
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=ef_construction)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=2)
    build = time.perf_counter() - t0
    index.set_num_threads(1)
    return index, build


def hnswlib_rows(base, queries, truth, m, ef_construction, efs):
    index, build = hnswlib_index(base, m, ef_construction)
    rows = []
    for ef in efs:
        index.set_ef(ef)
        t0 = time.perf_counter()
        labels, _ = index.knn_query(queries, k=TOP_K, num_threads=1)
        elapsed = time.perf_counter() - t0
        lat = []
        for q in queries:
            t = time.perf_counter()
            index.knn_query(q, k=TOP_K, num_threads=1)
            lat.append(time.perf_counter() - t)
        lat.sort()
        rows.append({"system": "hnswlib", "ef": ef, "qps": len(queries) / elapsed,
                     "p99_us": lat[int(0.99 * len(lat))] * 1e6,
                     "recall": recall(labels, truth), "inserts_per_s_2t": len(base) / build})
    return rows




class Served:
    """An `ann-bench --serve` process: one graph of ours, searched in the
    slices of queries asked of it; it times its own searches."""

    def __init__(self, binary, dataset, backend, quantization, m, ef_construction):
        self.name = f"{backend}-{quantization}"
        self.proc = subprocess.Popen(
            [binary, "--dataset", dataset, "--serve", "--backend", backend,
             "--quantization", quantization,
             "--m", str(m), "--ef-construction", str(ef_construction)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        if not ready.startswith("ready"):
            raise SystemExit(f"{self.name}: ann-bench --serve said {ready!r}")

    def search(self, ef, lo, hi):
        """(seconds, hits) of queries lo..hi at width ef."""
        self.proc.stdin.write(f"{ef} {lo} {hi}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        if len(answer) != 2 or answer[0] == "error:":
            raise SystemExit(f"{self.name}: ann-bench --serve answered {answer!r}")
        return float(answer[0]), int(answer[1])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def paired(args, base, queries, truth, efs):
    """Every system's searches interleaved slice by slice (SLICE queries, in
    an order that turns from slice to slice), so a machine whose speed moves
    slows them alike. hnswlib answers each slice in one batch call on one
    thread; ann-bench times its own searches only. Returns one row per
    system and width: median QPS over the rounds, recall, and the per-round
    speed against hnswlib."""
    index, build = hnswlib_index(base, args.m, args.ef_construction)
    print(f"hnswlib: built in {build:.1f} s on 2 threads", flush=True)
    served, rows, n = [], [], len(queries)
    try:
        for backend in args.backend.split(","):
            for q in args.quantization.split(","):
                served.append(Served(os.path.abspath(args.ann_bench), args.dataset, backend, q,
                                     args.m, args.ef_construction))
        names = ["hnswlib"] + [s.name for s in served]
        for ef in efs:
            index.set_ef(ef)
            secs = [[0.0] * len(names) for _ in range(args.rounds)]
            hits = [0] * len(names)
            for r in range(args.rounds):
                for j, lo in enumerate(range(0, n, SLICE)):
                    hi = min(lo + SLICE, n)
                    turn = (j + r) % len(names)
                    for s in [(i + turn) % len(names) for i in range(len(names))]:
                        if s == 0:
                            t0 = time.perf_counter()
                            labels, _ = index.knn_query(queries[lo:hi], k=TOP_K, num_threads=1)
                            secs[r][0] += time.perf_counter() - t0
                            found = hits_in(labels, truth[lo:hi])
                        else:
                            spent, found = served[s - 1].search(ef, lo, hi)
                            secs[r][s] += spent
                        if r == 0:
                            hits[s] += found
            for s, name in enumerate(names):
                speed = [round_secs[0] / round_secs[s] for round_secs in secs]
                row = {"system": name, "ef": ef, "paired": True,
                       "qps": statistics.median(n / round_secs[s] for round_secs in secs),
                       "recall": hits[s] / (n * TOP_K),
                       "speed_vs_hnswlib": statistics.median(speed),
                       "speed_vs_hnswlib_rounds": speed}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        for s in served:
            s.close()
    return rows


def paired_report(rows, efs, target):
    systems = list(dict.fromkeys(r["system"] for r in rows))
    print("\n| ef | " + " | ".join(systems) + " |")
    print("|---:|" + "---|" * len(systems))
    for ef in efs:
        cells = []
        for system in systems:
            r = next(r for r in rows if r["system"] == system and r["ef"] == ef)
            cell = f"{r['qps']:,.0f} ({r['recall']:.4f})"
            if system != "hnswlib":
                speed = r["speed_vs_hnswlib_rounds"]
                cell += f" {r['speed_vs_hnswlib']:.2f}× [{min(speed):.2f}-{max(speed):.2f}]"
            cells.append(cell)
        print(f"| {ef} | " + " | ".join(cells) + " |")
    print(f"\nfirst width with recall@10 ≥ {target}, and its QPS:")
    first = {}
    for system in systems:
        mine = [r for r in rows if r["system"] == system and r["recall"] >= target]
        first[system] = mine[0] if mine else None
        print(f"  {system}: " + (f"ef {mine[0]['ef']}, {mine[0]['qps']:,.0f} QPS "
                                 f"(recall {mine[0]['recall']:.4f})" if mine else "none"))
    base = first["hnswlib"]
    for system in systems[1:]:
        mine = first[system]
        if base and mine and mine["ef"] == base["ef"]:
            print(f"  {system} / hnswlib at recall ≥ {target}: {mine['speed_vs_hnswlib']:.2f}× "
                  "(paired, same width)")
        elif base and mine:
            print(f"  {system} / hnswlib at recall ≥ {target}: {mine['qps'] / base['qps']:.2f}× "
                  "(widths differ: a ratio of medians, not paired)")


def ann_bench_rows(binary, dataset, quantization, m, ef_construction, efs):
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "rows.json")
        subprocess.run([binary, "--dataset", dataset, "--backend", "usearch",
                        "--quantization", quantization, "--m", str(m),
                        "--ef-construction", str(ef_construction),
                        "--ef", ",".join(map(str, efs)), "--forced-queries", "1",
                        "--json", out], check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    return [{"system": f"usearch-{quantization}", "ef": r["ef"], "qps": r["qps"],
             "p99_us": r["p99_us"], "recall": r["recall_at_10"],
             "inserts_per_s_2t": r["inserts_per_s"]}
            for r in lines if "ef" in r and "selectivity" not in r]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann_bench")
    ap.add_argument("dataset")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", default="16,24,32,48,64,96,128")
    ap.add_argument("--quantization", default="f32,f16")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--backend", default="usearch",
                    help="--paired: our backends to serve, comma-separated (usearch, graph)")
    ap.add_argument("--paired", action="store_true",
                    help="interleave the systems' searches slice by slice in one run "
                         "(--rounds rounds over the queries) instead of running them "
                         "one after the other")
    args = ap.parse_args()
    efs = [int(e) for e in args.ef.split(",")]
    base, queries, truth = ann_dataset(args.dataset, TOP_K)
    if args.paired:
        paired_report(paired(args, base, queries, truth, efs), efs, args.target)
        return
    rows = []
    for r in range(args.rounds):
        batch = hnswlib_rows(base, queries, truth, args.m, args.ef_construction, efs)
        for q in args.quantization.split(","):
            batch += ann_bench_rows(os.path.abspath(args.ann_bench), args.dataset, q,
                                    args.m, args.ef_construction, efs)
        for row in batch:
            row["round"] = r
            print(json.dumps(row), flush=True)
        rows += batch
    print(f"\n| system | first ef with recall@10 ≥ {args.target} | recall | QPS (1 thread) | p99 µs | "
          "QPS at ef 64 | recall at ef 64 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        med = lambda ef, key: statistics.median(r[key] for r in mine if r["ef"] == ef)
        first = next((ef for ef in efs if med(ef, "recall") >= args.target), None)
        at64 = (f"{med(64, 'qps'):,.0f} | {med(64, 'recall'):.3f}" if 64 in efs else "– | –")
        if first is None:
            print(f"| {system} | none | – | – | – | {at64} |")
            continue
        print(f"| {system} | {first} | {med(first, 'recall'):.3f} | {med(first, 'qps'):,.0f} | "
              f"{med(first, 'p99_us'):,.0f} | {at64} |")


if __name__ == "__main__":
    main()
