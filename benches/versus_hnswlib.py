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

    benches/versus-hnswlib target/release/ann-bench DATASET_DIR [--rounds 2]
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


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / TOP_K for f, t in zip(found, truth)]))


def hnswlib_rows(base, queries, truth, m, ef_construction, efs):
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=ef_construction)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=2)
    build = time.perf_counter() - t0
    index.set_num_threads(1)
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
    args = ap.parse_args()
    efs = [int(e) for e in args.ef.split(",")]
    base, queries, truth = ann_dataset(args.dataset, TOP_K)
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
