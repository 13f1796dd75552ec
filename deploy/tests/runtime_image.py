"""Runs a binary as the Dockerfile's runtime stage would, with no container engine.

No Docker engine runs here and the base images cannot be pulled, so this
test rebuilds the runtime stage's file system from what it is made of: the
Debian 12 packages that gcr.io/distroless/cc-debian12 ships (C and C++
runtime, OpenSSL), its users (nonroot is uid 65532), and the stage's own
COPY, WORKDIR, USER, ENV and ENTRYPOINT read from the Dockerfile. It starts
the binary in a chroot of that tree as the stage's user, with PORT set as
Cloud Run sets it, and checks that it serves (/healthz, /readyz, then for
memory-server a memory stored, read, found and deleted, for the orchestrator
a thread and a run of the shipped offline agents), runs as that user, keeps its data under
the working directory (the rest of the tree is root's), and stops cleanly on
SIGTERM. A binary that needs a library the image lacks, ignores PORT, or
writes outside its home fails here. It runs the image the way
docs/operations.md's `docker run` example does (bound to 0.0.0.0 so a
published port reaches it, with auth on and one key in ORCHESTRA__AUTH__KEYS),
so that example is known to start and serve.

Usage (as root, for chroot): runtime_image.py DOCKERFILE TARGET BINARY CACHE_DIR [MODELS_DIR]
BINARY stands for what the builder stage copies to /out/<name>, MODELS_DIR
for its /out/models (the local embedder's model, `models fetch` output).
"""

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# The base image this emulates, and what it is made of (Debian 12 packages).
EMULATED_BASE = "gcr.io/distroless/cc-debian12:nonroot"
PACKAGES = ["libc6", "libgcc-s1", "libgomp1", "libstdc++6", "libssl3", "netbase", "tzdata"]
PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
          "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"

# docs/operations.md's `docker run` example: these variables on top of the image's.
API_KEY = "runtime-image-test-key"
DOCUMENTED_RUN_ENV = {
    "ORCHESTRA__SERVER__HOST": "0.0.0.0",
    "ORCHESTRA__AUTH__ENABLED": "true",
    "ORCHESTRA__AUTH__KEYS": '[{name="me",sha256="%s",role="admin",namespaces=["*"]}]'
                             % hashlib.sha256(API_KEY.encode()).hexdigest(),
}
# Settings only one service has.
TARGET_ENV = {
    # No embedder setting: the default (`auto`) must find the baked model
    # (the image's ORCHESTRA__EMBEDDER__MODEL_DIR) and load it as the stage's
    # user from the stage's tree.
    "memory-server": {"ORCHESTRA__MCP__ALLOWED_HOSTS": '["localhost","127.0.0.1"]'},
    "orchestrator": {},
}


def stage(dockerfile, target):
    """The FROM image and the (instruction, arguments) of stage TARGET."""
    with open(dockerfile) as source:
        text = source.read().replace("\\\n", " ")
    base, steps, inside = None, [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            inside = len(words) == 3 and words[1].upper() == "AS" and words[2] == target
            if inside:
                base = words[0]
        elif inside:
            steps.append((instruction, rest.strip()))
    if base is None:
        sys.exit(f"{dockerfile}: no stage named {target}")
    return base, steps


def packages_into(root, cache):
    """Unpacks the base image's packages into ROOT (downloaded once into CACHE)."""
    os.makedirs(cache, exist_ok=True)

    def debs():
        return sorted(f for f in os.listdir(cache) if f.endswith(".deb"))

    if len({deb.split("_")[0] for deb in debs()}) < len(PACKAGES):
        if subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *PACKAGES], cwd=cache).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *PACKAGES], cwd=cache, check=True)
    for deb in debs():
        subprocess.run(["dpkg-deb", "-x", os.path.join(cache, deb), root], check=True)


def build_root(root, steps, binary, repo, cache, models):
    """The runtime stage's tree; returns its user, working directory, env and command."""
    packages_into(root, cache)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc/passwd"), "w") as out:
        out.write(PASSWD)
    with open(os.path.join(root, "etc/group"), "w") as out:
        out.write(GROUP)
    os.makedirs(os.path.join(root, "tmp"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    home = os.path.join(root, "home/nonroot")
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chown(home, 65532, 65532)

    user, workdir, env, command = "0:0", "/", {}, []
    for instruction, rest in steps:
        if instruction == "COPY":
            words = shlex.split(rest)
            flags = [w for w in words if w.startswith("--")]
            source, dest = [w for w in words if not w.startswith("--")]
            if flags == ["--from=builder"] and source == "/out/models":
                if models is None:
                    sys.exit("the stage copies the baked models: give MODELS_DIR")
                source = models
            elif flags == ["--from=builder"]:
                if os.path.basename(source) != os.path.basename(binary):
                    sys.exit(f"the stage copies {source}; give that binary, not {binary}")
                source = binary
            elif flags:
                sys.exit(f"COPY {rest}: flags this test does not know")
            else:
                source = os.path.join(repo, source)
            dest = os.path.join(root, dest.lstrip("/"))
            os.makedirs(os.path.dirname(dest.rstrip("/")), exist_ok=True)
            if os.path.isdir(source):
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                shutil.copy2(source, dest)
        elif instruction == "WORKDIR":
            workdir = rest
            os.makedirs(os.path.join(root, rest.lstrip("/")), exist_ok=True)
        elif instruction == "USER":
            user = rest
        elif instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif instruction in ("ENTRYPOINT", "CMD"):
            command += json.loads(rest)
        elif instruction not in ("EXPOSE", "LABEL", "ARG"):
            sys.exit(f"{instruction} in the runtime stage: this test does not know it")
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid), workdir, env, command


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(method, url, body=None, key=API_KEY):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"  ok: {message}")


def exercise_memory_server(url):
    """A memory stored, read back, found and deleted."""
    created = call("POST", f"{url}/v1/memories",
                   {"namespace": "image-test", "text": "the runtime image serves memories"})
    memory_id = created["memory"]["id"]
    check(created["memory"]["embedding_model"] == "local:all-MiniLM-L6-v2:384",
          "the baked model embeds it by default (provider auto settles on local)")
    read = call("GET", f"{url}/v1/memories/{memory_id}")
    check(read["text"] == "the runtime image serves memories", "a stored memory reads back")
    found = call("POST", f"{url}/v1/memories/search",
                 {"namespace": "image-test", "query": "runtime image memories"})
    check(any(hit["memory"]["id"] == memory_id for hit in found["results"]), "search finds it")
    call("DELETE", f"{url}/v1/memories/{memory_id}")


def exercise_orchestrator(url):
    """A thread and a run of the shipped agents (the offline scripted model)."""
    agents = call("GET", f"{url}/v1/agents")["agents"]
    check(any(a["name"] == "assistant" for a in agents), "the shipped agents are loaded")
    thread = call("POST", f"{url}/v1/threads", {"namespace": "image-test", "user_id": "u"})
    outcome = call("POST", f"{url}/v1/threads/{thread['id']}/runs",
                   {"agent": "assistant", "input": "hello from the image"})
    check(outcome["run"]["status"] == "completed", "a run completes")
    messages = call("GET", f"{url}/v1/threads/{thread['id']}/messages")["messages"]
    check([m["role"] for m in messages] == ["user", "assistant"], "the thread keeps the turn")


EXERCISE = {"memory-server": exercise_memory_server, "orchestrator": exercise_orchestrator}
AUTHENTICATED_PATH = {"memory-server": "/v1/namespaces", "orchestrator": "/v1/agents"}


def run(root, uid, gid, workdir, env, command, target):
    port = free_port()
    env = dict(env, PORT=str(port), **DOCUMENTED_RUN_ENV, **TARGET_ENV[target])

    def enter():
        os.chroot(root)
        os.chdir(workdir)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    log = open(os.path.join(os.path.dirname(root), "server.log"), "w")
    server = subprocess.Popen(command, env=env, preexec_fn=enter, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if server.poll() is not None:
                raise AssertionError(f"the server exited with {server.returncode}")
            try:
                call("GET", f"{url}/readyz")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server never became ready")
        check(True, f"ready on PORT={port} (set as Cloud Run sets it)")
        call("GET", f"{url}/healthz")
        check(True, "/healthz answers")
        try:
            call("GET", f"{url}{AUTHENTICATED_PATH[target]}", key=None)
            raise AssertionError("a request without a key was served")
        except urllib.error.HTTPError as e:
            check(e.code == 401, "bound to 0.0.0.0 with auth on: no key, 401")
        with open(f"/proc/{server.pid}/status") as status:
            ids = {line.split(":")[0]: line.split()[1:] for line in status}
        check(ids["Uid"] == [str(uid)] * 4 and ids["Gid"] == [str(gid)] * 4,
              f"runs as {uid}:{gid}, the stage's USER")
        EXERCISE[target](url)
        home = os.path.join(root, workdir.lstrip("/"))
        check(any(os.scandir(home)), f"its data lives under {workdir}")
        server.send_signal(signal.SIGTERM)
        check(server.wait(timeout=30) == 0, "SIGTERM stops it cleanly (exit 0)")
    except BaseException:
        server.kill()
        server.wait()
        log.close()
        with open(log.name) as printed:
            sys.stderr.write(printed.read()[-4000:])
        raise


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    dockerfile, target, binary, cache = argv[1:5]
    models = os.path.abspath(argv[5]) if len(argv) == 6 else None
    if target not in EXERCISE:
        sys.exit(f"no checks for target {target}; known: {', '.join(EXERCISE)}")
    base, steps = stage(dockerfile, target)
    if base != EMULATED_BASE:
        sys.exit(f"the {target} stage is FROM {base}; this test emulates {EMULATED_BASE}: "
                 "update PACKAGES and EMULATED_BASE together")
    work = tempfile.mkdtemp(prefix="runtime-image-")
    try:
        root = os.path.join(work, "root")
        os.makedirs(root)
        uid, gid, workdir, env, command = build_root(
            root, steps, os.path.abspath(binary), os.path.dirname(os.path.abspath(dockerfile)),
            cache, models)
        print(f"{target}: {EMULATED_BASE} rebuilt from {len(PACKAGES)} Debian packages, "
              f"entrypoint {command}")
        run(root, uid, gid, workdir, env, command, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
