#!/usr/bin/env python3
"""memory-server builds or settings against each other at concurrency 8,
through the Rust client (`orchestra-bench replay`), without Chroma: each
server is started and loaded once with an ann-bench dataset, then the
replays alternate, round by round, the order turning each round, so a
machine whose speed moves from minute to minute slows them alike. Prints
each round's QPS and server CPU per query, then per system the medians
and the median (and range) of its per-round QPS against the first.

    <python with numpy> benches/builds_ab.py DATASET ROUNDS ORCHESTRA_BENCH \\
        NAME@MEMORY_SERVER=[ORCHESTRA__KEY=VALUE,...] ...

e.g. `before@/tmp/old/memory-server= after@target/release/memory-server=`
(docs/benchmarks.md, "The graph walk on the AMD VM").
"""
import os
import statistics
import sys
import tempfile

import versus_chroma as vc
from benchproc import ann_dataset, stop

SECS = 8


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    dataset, rounds, client, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    base, queries, truth = ann_dataset(dataset, vc.TOP_K)
    vectors = [vc.vector_json(v) for v in base]
    systems = []
    for spec in specs:
        name, _, assignments = spec.partition("=")
        name, _, binary = name.partition("@")
        env = dict(a.split("=", 1) for a in assignments.split(",") if a)
        systems.append(vc.MemoryServer(name, os.path.abspath(binary), env))
    with tempfile.TemporaryDirectory() as work:
        try:
            for i, s in enumerate(systems):
                data = os.path.join(work, str(i))
                os.makedirs(data)
                s.start(data)
                print(f"{s.name} load/s {vc.load(s, vectors):.0f}", flush=True)
            bodies = {s.name: [s.query_body(vc.vector_json(v), None) for v in queries]
                      for s in systems}
            for s in systems:
                vc.search(s, bodies[s.name], truth, 2, 2)  # warm-up
            rows = {s.name: [] for s in systems}
            for r in range(rounds):
                for s in systems if r % 2 == 0 else systems[::-1]:
                    row = vc.replay(s, bodies[s.name], 8, SECS, os.path.abspath(client))
                    rows[s.name].append(row)
                    print(r, s.name, round(row["qps"]), round(row["server_cpu_ms_per_query"], 3),
                          flush=True)
        finally:
            for s in systems:
                if hasattr(s, "proc"):
                    stop(s.proc)
    first = rows[systems[0].name]
    for s in systems:
        mine = rows[s.name]
        ratios = [a["qps"] / b["qps"] for a, b in zip(mine, first)]
        print(f"{s.name:24} QPS {statistics.median(x['qps'] for x in mine):7.0f}"
              f"  CPU ms/query {statistics.median(x['server_cpu_ms_per_query'] for x in mine):.3f}"
              f"  against {systems[0].name} {statistics.median(ratios):.3f}"
              f" [{min(ratios):.2f}-{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
