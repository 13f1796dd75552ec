#!/usr/bin/env python3
"""What a write costs as its conversation grows (docs/benchmarks.md,
"Conversation context: the turn before").

Each configuration is a memory-server binary and a search template; per
round and configuration a fresh server on an embedded store (built-in
embedder) takes TURNS turns of one session, one `POST /v1/memories` each,
in turn order. Reports per configuration the median over rounds of the
client-side p50 of the first and of the last WINDOW writes: with
`{previous_turn}` in the template every write looks up the turn before it
among the session's turns.

    python3 benches/session_writes.py ROUNDS NAME=BINARY:TEMPLATE ...
    python3 benches/session_writes.py 2 turns=target/release/memory-server:turns \\
        text=target/release/memory-server:{text}
"""

import json
import statistics
import sys
import tempfile
import time
import urllib.request

from benchproc import start_memory_server, stop

TURNS = 2000
WINDOW = 200


def post(url, body):
    req = urllib.request.Request(url + "/v1/memories", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def one_run(binary, template):
    """Client-side p50 ms of the first and the last WINDOW writes."""
    with tempfile.TemporaryDirectory() as data:
        proc, url = start_memory_server(binary, data, {"ORCHESTRA__SEARCH__TEMPLATE": template})
        try:
            took = []
            for turn in range(TURNS):
                speaker = ("Ana", "Ben")[turn % 2]
                body = {"namespace": "bench", "user_id": "u1", "session_id": "s1",
                        "text": f"{speaker}: turn {turn} of a long talk about gardens and trains",
                        "metadata": {"speaker": speaker, "turn": turn}}
                began = time.perf_counter()
                post(url, body)
                took.append((time.perf_counter() - began) * 1000)
        finally:
            stop(proc)
    return statistics.median(took[:WINDOW]), statistics.median(took[-WINDOW:])


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    rounds = int(sys.argv[1])
    configs = []
    for arg in sys.argv[2:]:
        name, _, rest = arg.partition("=")
        binary, _, template = rest.partition(":")
        configs.append((name, binary, template))
    runs = {name: [] for name, _, _ in configs}
    for r in range(rounds):
        # Alternate the order so neither configuration always runs first.
        for name, binary, template in configs if r % 2 == 0 else reversed(configs):
            first, last = one_run(binary, template)
            runs[name].append((first, last))
            print(f"round {r + 1} {name}: first {WINDOW} p50 {first:.2f} ms, "
                  f"last {WINDOW} p50 {last:.2f} ms", flush=True)
    print(f"\n{'configuration':<16} {'first p50 ms':>13} {'last p50 ms':>12}")
    for name, _, _ in configs:
        first = statistics.median(f for f, _ in runs[name])
        last = statistics.median(l for _, l in runs[name])
        print(f"{name:<16} {first:>13.2f} {last:>12.2f}")


if __name__ == "__main__":
    main()
