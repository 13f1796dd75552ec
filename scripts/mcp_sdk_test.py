"""Drives memory-server with the official MCP Python SDK (pinned in scripts/test).

Starts the real binary with API keys on a free port, then, through the SDK's
own client: the 2025-11-25 handshake era and the 2026-07-28 stateless era over
streamable HTTP, and stdio (`memory-server mcp-stdio`). Each run lists the
tools, stores, searches, gets, updates, deletes, appends to and reads a
session, builds a context block, reads a resource, gets the prompt, and checks
isError on bad input and refusals without a key and across namespaces.

Usage: python mcp_sdk_test.py /path/to/memory-server
"""

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TOOLS = sorted(
    [
        "memory_context",
        "memory_delete",
        "memory_extract",
        "memory_get",
        "memory_list",
        "memory_policy",
        "memory_search",
        "memory_settings",
        "memory_store",
        "memory_update",
        "session_append",
        "session_get",
    ]
)

KEYS = """
[auth]
enabled = true

[[auth.keys]]
name = "writer-a"
key = "k-writer-a"
role = "write"
namespaces = ["a", "stdio"]

[[auth.keys]]
name = "writer-b"
key = "k-writer-b"
role = "write"
namespaces = ["b"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(port: int, data: Path, extra: str = "") -> str:
    return (
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[storage]\nbackend = "embedded"\npath = "{data}"\nsnapshot_every_secs = 0\n\n'
        f'[log]\nlevel = "warn"\n{KEYS}\n{extra}\n'
    )


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def ok(result) -> dict:
    check(not result.is_error, f"tool failed: {result.content}")
    data = result.structured_content
    check(json.loads(result.content[0].text) == data, "text content is the structured JSON")
    return data


def failed(result) -> str:
    check(bool(result.is_error), f"tool should have failed: {result.structured_content}")
    return result.content[0].text


async def exercise(client: Client, ns: str, label: str) -> None:
    tools = await client.list_tools()
    names = sorted(t.name for t in tools.tools)
    check(names == TOOLS, f"{label}: tools {names}")
    for t in tools.tools:
        check(t.output_schema is not None, f"{label}: {t.name} has an outputSchema")
        check(t.annotations is not None and t.annotations.read_only_hint is not None,
              f"{label}: {t.name} has annotations")

    stored = ok(await client.call_tool("memory_store", {"memories": [
        {"namespace": ns, "text": f"{label}: Alice prefers green tea", "user_id": "alice"},
    ]}))
    memory = stored["memories"][0]["memory"]
    mid = memory["id"]

    found = ok(await client.call_tool("memory_search", {"namespace": ns, "query": "green tea"}))
    check(found["results"][0]["memory"]["id"] == mid, f"{label}: search finds the memory")

    got = ok(await client.call_tool("memory_get", {"id": mid}))
    check(got["user_id"] == "alice", f"{label}: get")

    updated = ok(await client.call_tool("memory_update", {
        "id": mid, "changes": {"text": f"{label}: Alice prefers jasmine tea", "version": memory["version"]},
    }))
    check(updated["version"] > memory["version"], f"{label}: update bumps the version")

    ok(await client.call_tool("session_append", {
        "namespace": ns, "session_id": "s1",
        "messages": [{"role": "user", "content": "which tea?"}],
    }))
    session = ok(await client.call_tool("session_get", {"namespace": ns, "session_id": "s1"}))
    check(session["messages"][-1]["content"] == "which tea?", f"{label}: session append/get")

    context = ok(await client.call_tool("memory_context", {
        "namespace": ns, "query": "jasmine tea", "session_id": "s1", "max_chars": 500,
    }))
    check("jasmine tea" in context["context"] and "which tea?" in context["context"],
          f"{label}: context block {context['context']!r}")

    policy = ok(await client.call_tool("memory_policy", {"namespace": ns}))
    check(policy["namespace"] == ns and policy["source"] == "config", f"{label}: policy {policy!r}")

    settings = ok(await client.call_tool("memory_settings", {"namespace": ns}))
    check(settings["namespace"] == ns and settings["source"] == "default"
          and settings["named_templates"]["chat"].endswith("{text}{previous_turn}")
          and settings["named_templates"]["turns"] == "{text}{previous_turn}", f"{label}: settings {settings!r}")

    # Extraction is off by default: the tool says how to turn it on.
    off = failed(await client.call_tool("memory_extract", {"namespace": ns, "session_id": "s1"}))
    check("extraction is off" in off, f"{label}: memory_extract {off!r}")

    read = await client.read_resource(f"memory://{ns}/{mid}")
    body = json.loads(read.contents[0].text)
    check(body["id"] == mid, f"{label}: resource read")

    prompt = await client.get_prompt("recall", {"namespace": ns, "task": "jasmine tea"})
    check("jasmine tea" in prompt.messages[0].content.text, f"{label}: recall prompt")

    bad = failed(await client.call_tool("memory_get", {"id": "not-a-uuid"}))
    check("not a memory id" in bad, f"{label}: bad id message {bad!r}")
    blank = failed(await client.call_tool("memory_store", {"memories": [{"namespace": ns, "text": " "}]}))
    check(blank.startswith("invalid_argument"), f"{label}: blank text {blank!r}")

    deleted = ok(await client.call_tool("memory_delete", {"id": mid}))
    check(deleted["deleted"] is True, f"{label}: delete")
    gone = failed(await client.call_tool("memory_get", {"id": mid}))
    check(gone.startswith("not_found"), f"{label}: deleted memory is gone")
    print(f"  {label}: ok")


def http_client(url: str, key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))


async def refusals(url: str, mode: str) -> None:
    # A key for namespace a cannot reach b.
    async with Client(http_client(url, "k-writer-a"), mode=mode) as c:
        r = failed(await c.call_tool("memory_store", {"memories": [{"namespace": "b", "text": "planted"}]}))
        check(r.startswith("permission_denied"), f"{mode}: cross-namespace store {r!r}")
        r = failed(await c.call_tool("memory_search", {"namespace": "b", "query": "plan"}))
        check(r.startswith("permission_denied"), f"{mode}: cross-namespace search {r!r}")
    # Without a key the server answers 401: the client cannot connect or call.
    refused = False
    try:
        async with Client(http_client(url, None), mode=mode) as c:
            await c.list_tools()
    except BaseException:  # the SDK surfaces the 401 as an error (or an exception group)
        refused = True
    check(refused, f"{mode}: a client without a key was served")
    print(f"  {mode}: refusals ok")


async def main(binary: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        (tmp / "http").mkdir()
        (tmp / "http" / "default.toml").write_text(config(port, tmp / "data-http"))
        server = subprocess.Popen([binary, "--config-dir", str(tmp / "http")])
        try:
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                    break
                except OSError:
                    check(time.time() < deadline, "memory-server did not become ready")
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/mcp"
            print("streamable HTTP:")
            async with Client(http_client(url, "k-writer-a"), mode="legacy") as c:
                check(c.protocol_version == "2025-11-25", f"legacy negotiated {c.protocol_version}")
                await exercise(c, "a", "2025-11-25")
            async with Client(http_client(url, "k-writer-a"), mode="2026-07-28") as c:
                check(c.protocol_version == "2026-07-28", f"modern negotiated {c.protocol_version}")
                await exercise(c, "a", "2026-07-28")
            async with Client(http_client(url, "k-writer-a")) as c:
                print(f"  auto mode negotiated {c.protocol_version}")
                check(c.protocol_version == "2026-07-28", "auto mode prefers the newest era")
            await refusals(url, "legacy")
            await refusals(url, "2026-07-28")
        finally:
            server.terminate()
            server.wait(timeout=15)

        print("stdio:")
        (tmp / "stdio").mkdir()
        (tmp / "stdio" / "default.toml").write_text(
            config(free_port(), tmp / "data-stdio", '[mcp]\nstdio_key = "k-writer-a"\n')
        )
        params = StdioServerParameters(
            command=binary, args=["--config-dir", str(tmp / "stdio"), "mcp-stdio"]
        )
        async with Client(params, mode="legacy") as c:
            await exercise(c, "stdio", "stdio")
            r = failed(await c.call_tool("memory_list", {"namespace": "b"}))
            check(r.startswith("permission_denied"), f"stdio acts as its key: {r!r}")
    print("mcp sdk test: all passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
