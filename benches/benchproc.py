"""What the Python benches share: a free port, a process tree's RSS, CPU
time and CPU binding, a data directory's size, a release memory-server
started on a fresh directory with the repository's config and stopped with
SIGTERM (it snapshots on the way out, as in production), and the reader of
ann-bench's dataset directories."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

MIB = 1 << 20


def free_port():
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid):
    """VmRSS and VmHWM of `pid`, in MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def process_tree(pid):
    """`pid` and every descendant (a server may fork helpers)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The command name may hold spaces: the ppid follows its ')'.
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def tree_rss(pid):
    """RSS of `pid` and every descendant, in MiB."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += status(p).get("VmRSS", 0)
        except OSError:
            pass
    return total


def pin_tree(pid, cpus):
    """Binds every thread of `pid` and its descendants to `cpus` (a set of
    CPU numbers); threads they start later inherit it."""
    for p in process_tree(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass  # a thread or process that ended meanwhile


def tree_cpu_secs(pid):
    """CPU seconds (user + system) that `pid` and its live descendants have used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime and stime are the 14th and 15th fields; 12th and 13th after ')'.
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def dir_mib(path):
    """Bytes of every file under `path`, in MiB."""
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / MIB


def wait_ready(proc, url, is_ready, what):
    """Polls `url` until `is_ready(json)` holds; kills `proc` after a minute."""
    for _ in range(600):
        try:
            if is_ready(json.load(urllib.request.urlopen(url, timeout=2))):
                return
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before it was ready")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{what} did not become ready")


def start_memory_server(server, data, env):
    """memory-server on `data` with extra environment `env`; (process, base URL)."""
    port = free_port()
    # The built-in embedder unless `env` says otherwise: the default (`auto`)
    # would pick up a model fetched into ./models.
    full = {**os.environ, "ORCHESTRA__STORAGE__PATH": data, "ORCHESTRA__LOG__LEVEL": "warn",
            "PORT": str(port), "ORCHESTRA__STORAGE__SNAPSHOT_EVERY_SECS": "0",
            "ORCHESTRA__EMBEDDER__PROVIDER": "builtin", **env}
    proc = subprocess.Popen([server, "--config-dir", "config"], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url + "/readyz", lambda r: r.get("ready"), "memory-server")
    return proc, url


def stop(proc):
    """SIGTERM, then waits for the process to finish its shutdown."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)


def ann_dataset(path, top_k):
    """(base, queries, truth) of an ann-bench dataset directory: float32 rows,
    and each query's `top_k` exact neighbours (numpy, imported here so the
    benches without it can use the rest)."""
    import numpy as np

    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    dim = meta["dim"]
    base = np.fromfile(os.path.join(path, "base.f32"), dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(os.path.join(path, "queries.f32"), dtype="<f4").reshape(-1, dim)
    gt = np.fromfile(os.path.join(path, "gt.i32"), dtype="<i4").reshape(-1, meta["gt_k"])
    return base, queries, gt[:, :top_k]
