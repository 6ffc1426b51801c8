"""The curl smoke script against a real ``sysevents serve`` process."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sysevents.keys import new_key
from tests.conftest import skip_or_fail

from .served import ROOT, serve

SMOKE = ROOT / "scripts" / "smoke.sh"


@pytest.fixture(autouse=True)
def _tools() -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        skip_or_fail("the smoke script needs bash and curl")


KEY, _, _ = new_key()
KEYS = {"SYSEVENTS_API_KEYS": f"smoke:read+write+admin:{KEY}"}


def run_smoke(url: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SMOKE), url, key], capture_output=True, text=True, timeout=120, check=False
    )


def test_smoke_on_memory() -> None:
    with serve("--database-url", "memory://", env=KEYS) as url:
        result = run_smoke(url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 14 checks passed" in result.stdout
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") == 14


def test_smoke_on_postgres_and_redis(
    postgres_url: str, redis_server_url: str, cache_prefix: str
) -> None:
    env = {"SYSEVENTS_CACHE_PREFIX": cache_prefix, **KEYS}
    with serve("--database-url", postgres_url, "--redis-url", redis_server_url, env=env) as url:
        result = run_smoke(url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 14 checks passed" in result.stdout


def test_smoke_fails_on_the_first_failed_check() -> None:
    with serve(env=KEYS) as url:
        result = run_smoke(url + "/nothing-here")
    assert result.returncode != 0
    assert "FAIL: check 1, health" in result.stderr
    assert "ok 2" not in result.stdout
