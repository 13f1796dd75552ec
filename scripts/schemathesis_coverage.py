"""Says how deep schemathesis reached: per documented operation, how many
requests it sent and how many the server accepted (2xx), from the run's HAR
file. An operation that never got a 2xx was only ever rejected at the edge,
so its core went untested: that fails, naming it.

Usage: schemathesis_coverage.py HAR OPENAPI_URL [EXCLUDED_PATH ...]
"""

import json
import re
import sys
import urllib.parse
import urllib.request


def operations(doc, excluded):
    """(method, path template, regex) of every documented operation."""
    out = []
    for path, item in doc["paths"].items():
        if path in excluded:
            continue
        # A `{param}` segment matches any one segment; the rest literally.
        pattern = "^" + "/".join("[^/]+" if seg.startswith("{") else re.escape(seg)
                                 for seg in path.split("/")) + "$"
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                out.append((method.upper(), path, re.compile(pattern)))
    # Literal paths first: /v1/memories/search is not /v1/memories/{id}.
    out.sort(key=lambda op: "{" in op[1])
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    har, url, excluded = argv[1], argv[2], set(argv[3:])
    with urllib.request.urlopen(url) as response:
        doc = json.load(response)
    with open(har) as f:
        entries = json.load(f)["log"]["entries"]
    ops = operations(doc, excluded)
    counts = {(m, p): [0, 0, 0] for m, p, _ in ops}  # sent, 2xx, 4xx
    for entry in entries:
        method = entry["request"]["method"].upper()
        path = urllib.parse.urlsplit(entry["request"]["url"]).path
        status = entry["response"]["status"]
        for m, p, regex in ops:
            if m == method and regex.match(path):
                c = counts[(m, p)]
                c[0] += 1
                c[1] += 200 <= status < 300
                c[2] += 400 <= status < 500
                break
    print(f"{'operation':<40} {'sent':>6} {'2xx':>6} {'4xx':>6} {'2xx share':>9}")
    never = []
    for (m, p), (sent, ok, rejected) in sorted(counts.items(), key=lambda kv: kv[0][1]):
        share = f"{ok / sent:.0%}" if sent else "-"
        print(f"{m + ' ' + p:<40} {sent:>6} {ok:>6} {rejected:>6} {share:>9}")
        if ok == 0:
            never.append(f"{m} {p}")
    total = sum(c[0] for c in counts.values())
    accepted = sum(c[1] for c in counts.values())
    print(f"{len(counts)} operations, {total} requests, {accepted} accepted "
          f"({accepted / max(total, 1):.0%}); excluded: {', '.join(sorted(excluded)) or 'none'}")
    if never:
        print("never accepted (the fuzzer did not reach their core): " + ", ".join(never),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
