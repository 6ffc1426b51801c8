"""HTTP workloads: ``sysevents serve`` under wrk, beside a bare Litestar app on the same server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from library import Context
from measure import Figure

HERE = Path(__file__).resolve().parent
CONNECTIONS = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(core: int) -> list[str]:
    """taskset prefix pinning a process to ``core`` (nothing if taskset or the core is missing)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core)]
    return []


def _wait(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up")


@contextmanager
def _server(
    command: list[str], env: dict[str, str], health: str
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        try:
            _wait(health)
        except RuntimeError:
            proc.terminate()
            raise RuntimeError(proc.stderr.read().decode()[-2000:] if proc.stderr else "") from None
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _fetch(request: urllib.request.Request | str, attempts: int = 60) -> bytes:
    """The body of a successful response, retrying while the app's store warms up (503)."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()[:500]
            if exc.code != 503 or attempt == attempts - 1:
                raise RuntimeError(f"{exc.code}: {body!r}") from exc
            time.sleep(0.5)
    raise AssertionError("unreachable")


def ensure_wrk() -> str | None:
    """wrk, installed from the distribution's packages if missing and possible."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return shutil.which("wrk")


def _wrk(wrk: str, url: str, seconds: float, script: Path | None) -> float:
    command = [*_pin(0), wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", url]
    if script is not None:
        command[len(_pin(0)) + 1 : len(_pin(0)) + 1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(match.group(1))


def run(ctx: Context, url: str, redis_url: str, *, smoke: bool) -> dict[str, Any]:
    wrk = ensure_wrk()
    if wrk is None:
        print("http: wrk is missing and cannot be installed; skipped", flush=True)
        return {"setup": "skipped: wrk unavailable"}
    print("http", flush=True)
    seconds = 1.0 if smoke else 5.0
    prefix = ctx.prefix + "-http"
    bare_prefix = ctx.prefix + "-bare"
    port, bare_port = _free_port(), _free_port()
    serve = [
        sys.executable,
        "-m",
        "sysevents.cli",
        "serve",
        "--port",
        str(port),
        "--database-url",
        url,
        "--redis-url",
        redis_url,
    ]
    bare = [sys.executable, str(HERE / "bare_app.py"), str(bare_port)]
    # The same service with keys required (a key given in the settings): the
    # cost of authentication per request, beside the open one.
    from sysevents.keys import new_key

    key, _, _ = new_key()
    keyed_port = _free_port()
    keyed = [*serve[:-1], redis_url]
    keyed[keyed.index("--port") + 1] = str(keyed_port)
    # wrk is one client at thousands of requests a second, 16 at a time: no caller,
    # address or concurrent-reads limit applies to it.
    env = {
        "SYSEVENTS_CACHE_PREFIX": prefix,
        "SYSEVENTS_RATE_LIMIT": "off",
        "SYSEVENTS_ADDRESS_LIMIT": "off",
        "SYSEVENTS_MAX_READS_PER_KEY": "10000",
    }
    keyed_env = {
        **env,
        "SYSEVENTS_API_KEYS": f"bench:read+write+admin:{key}",
        "SYSEVENTS_AUTH": "required",
    }
    bare_env = {"BARE_DATABASE_URL": url, "BARE_REDIS_URL": redis_url, "BARE_PREFIX": bare_prefix}
    base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    keyed_base = f"http://127.0.0.1:{keyed_port}"
    body = json.dumps(
        {
            "event_type": "http_request",
            "severity": "info",
            "message": "GET /orders 200",
            "details": {"ms": 12},
            "source": "svc-web-4",
        }
    )
    import redis

    client = redis.Redis.from_url(redis_url)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        stack.enter_context(_server([*_pin(1), *serve], env, base + "/api/health"))
        stack.enter_context(_server([*_pin(1), *bare], bare_env, bare_base + "/api/events/stats"))
        stack.enter_context(_server([*_pin(1), *keyed], keyed_env, keyed_base + "/api/health"))
        post = Path(tmp) / "post.lua"
        post.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body)}\n"
        )
        request = urllib.request.Request(
            base + "/api/events", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            event = json.loads(response.read())
        event_id = event["id"]
        with urllib.request.urlopen(f"{base}/api/events/{event_id}") as response:
            client.set(f"{bare_prefix}:event:{event_id}", response.read())
        with urllib.request.urlopen(f"{base}/api/events/stats") as response:
            client.set(f"{bare_prefix}:stats", response.read())
        routes = [
            ("POST /api/events", "/api/events", post, "INSERT…RETURNING"),
            ("GET /api/events/{id} (cached)", f"/api/events/{event_id}", None, "Redis GET"),
            ("GET /api/events (first page)", "/api/events", None, "page SELECT + capped count"),
            ("GET /api/events/stats (cached)", "/api/events/stats", None, "Redis GET"),
        ]
        keyed_post = Path(tmp) / "keyed_post.lua"
        keyed_post.write_text(post.read_text() + f'wrk.headers["Authorization"] = "Bearer {key}"\n')
        keyed_get = Path(tmp) / "keyed_get.lua"
        keyed_get.write_text(f'wrk.headers["Authorization"] = "Bearer {key}"\n')
        for name, path, script, call in routes:
            mine: list[float] = []
            theirs: list[float] = []
            _wrk(wrk, base + path, 1, script)  # warm-up
            _wrk(wrk, bare_base + path, 1, script)
            for _ in range(ctx.runs):
                mine.append(_wrk(wrk, base + path, seconds, script))
                theirs.append(_wrk(wrk, bare_base + path, seconds, script))
            from measure import median

            fig = Figure(
                "http",
                name,
                "rate",
                "req/s",
                median(mine),
                f"bare Litestar + {call}",
                median(theirs),
                "≥ 0.8× bare",
                None,
                mine,
                theirs,
            )
            fig.met = fig.ratio is not None and fig.ratio >= 0.8
            ctx.figures.append(fig)
            print(
                f"  http     {name:44} {fig.value:10.0f} req/s vs {fig.baseline:10.0f} "
                f"ratio {fig.ratio:.2f}",
                flush=True,
            )
        # The cost of keys: the same requests, keyed, against the service with auth on.
        for name, path, script, keyed_script in [
            ("POST /api/events with an API key", "/api/events", post, keyed_post),
            (
                "GET /api/events/{id} (cached) with an API key",
                f"/api/events/{event_id}",
                None,
                keyed_get,
            ),
        ]:
            open_runs: list[float] = []
            keyed_runs: list[float] = []
            _wrk(wrk, keyed_base + path, 1, keyed_script)  # warm-up
            for _ in range(ctx.runs):
                keyed_runs.append(_wrk(wrk, keyed_base + path, seconds, keyed_script))
                open_runs.append(_wrk(wrk, base + path, seconds, script))
            from measure import median

            fig = Figure(
                "http",
                name,
                "rate",
                "req/s",
                median(keyed_runs),
                "the same without auth",
                median(open_runs),
                "(cost of auth, no target)",
                None,
                keyed_runs,
                open_runs,
            )
            ctx.figures.append(fig)
            print(
                f"  http     {name:44} {fig.value:10.0f} req/s vs {fig.baseline:10.0f} "
                f"ratio {fig.ratio:.2f}",
                flush=True,
            )
    for stale in client.scan_iter(match=f"{ctx.prefix}-*", count=1000):
        client.delete(stale)
    client.close()
    pinned = bool(_pin(1))
    setup = (
        f"Both servers run under uvicorn (one worker, `log_level=info` as `sysevents serve` "
        f"sets it), {'pinned to core 1 with `taskset -c 1`' if pinned else 'unpinned'}; wrk "
        f"(1 thread, {CONNECTIONS} connections, {seconds:g} s per run) "
        f"{'pinned to core 0' if pinned else 'unpinned'}. PostgreSQL and Redis are not pinned: "
        "they share both cores with the others. The real app runs with its Redis cache; "
        "the bare app does the one driver call per request named in the baseline column."
    )
    return {"setup": setup, "connections": CONNECTIONS, "seconds_per_run": seconds}
