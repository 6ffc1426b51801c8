"""Development sessions: ``nox`` runs tests, lint and typecheck; ``nox -s bench`` measures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "tests_lowest", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The uv that nox itself uses (installed beside it), for the tests that build
# the wheel: the sessions' PATH need not include it.
UV = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
TEST_ENV = {"SYSEVENTS_UV": UV}


def install(session: nox.Session, *groups: str, extras: str = "all") -> None:
    """Install the project (not editable, as users get it) and the named groups."""
    session.install(f".[{extras}]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against real PostgreSQL and Redis."""
    install(session, "test")
    session.run("pytest", *session.posargs, env=TEST_ENV)


# The tests that exercise what depends most on the libraries' versions: the
# pydantic fast paths, the model, every backend, the cache (on a Redis Cluster
# too), the API, and the deadlines serve adds to uvicorn's protocols.
LOWEST_TESTS = [
    "tests/test_fast.py",
    "tests/test_model.py",
    "tests/test_conformance.py",
    "tests/test_cache.py",
    "tests/test_cluster.py",
    "tests/test_migrations.py",
    "tests/http/test_api.py",
    "tests/http/test_bad_requests.py",
    "tests/http/test_slow_clients.py",
]


@nox.session(venv_backend="uv")
def tests_lowest(session: nox.Session) -> None:
    """The version-sensitive tests on the lowest releases ``pyproject.toml`` allows."""
    session.install("--resolution=lowest-direct", ".[all]")
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *(session.posargs or LOWEST_TESTS), env=TEST_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check, and the import contracts (layers, no cycles)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # lint-imports finds the packages' files on the path; it imports none of them.
    session.run("lint-imports", env={"PYTHONPATH": "src"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over both packages."""
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the raw drivers; ``-- --smoke`` for a seconds-long check.

    Needs PostgreSQL and Redis (``SYSEVENTS_BENCH_POSTGRES_URL``,
    ``SYSEVENTS_BENCH_REDIS_URL``); installs wrk from the distribution if missing.
    """
    install(session, "bench")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def bench_http(session: nox.Session) -> None:
    """Every route of ``sysevents serve`` beside a bare Litestar app and the seed's stack.

    ``-- --rows N`` sets the table size (default 1 000 000); ``-- --smoke`` runs
    in seconds; ``-- --out DIR`` writes head_to_head.md and .json. Needs
    PostgreSQL, Redis and wrk (installed from the distribution if missing).
    """
    install(session, "bench")
    session.run("python", "bench/head_to_head.py", *session.posargs)


@nox.session
def bench_ecosystem(session: nox.Session) -> None:
    """The trace_id index, /metrics and OpenTelemetry in emit(); ``-- --smoke`` for seconds.

    Needs PostgreSQL (``SYSEVENTS_BENCH_POSTGRES_URL``); prints tables for results.md.
    """
    install(session, "bench", "test")
    smoke = "--smoke" in session.posargs
    rows = ["--rows", "5000", "--runs", "1", "--seconds", "0.2"] if smoke else []
    session.run("python", "bench/traces.py", *rows)
    session.run(
        "python", "bench/metrics_cost.py", *(["--requests", "50", "--runs", "1"] if smoke else [])
    )
    session.run(
        "python", "bench/emit_otel.py", *(["--calls", "1000", "--runs", "1"] if smoke else [])
    )


@nox.session
def bench_search(session: nox.Session) -> None:
    """Search, histogram and export beside raw SQL, and what the tail's NOTIFY costs writers.

    ``-- --rows N`` sets the table size (default 1 000 000); ``-- --smoke`` runs
    both in seconds. Needs PostgreSQL (``SYSEVENTS_BENCH_POSTGRES_URL``: the one
    setting both scripts read) and pgbench.
    """
    install(session, "bench", "test")
    session.run("python", "bench/search.py", *session.posargs)
    smoke = ["--smoke"] if "--smoke" in session.posargs else []
    session.run("python", "bench/notify_cost.py", *smoke)


@nox.session
def bench_limits(session: nox.Session) -> None:
    """What the fair-share limits cost POST and a cached GET, and the OTLP finding's body.

    ``-- --smoke`` runs in seconds. Needs Redis (``SYSEVENTS_BENCH_REDIS_URL``).
    """
    install(session, "bench")
    session.run("python", "bench/limits_cost.py", *session.posargs)


@nox.session
def bench_replicas(session: nox.Session) -> None:
    """Writers' throughput with the reads on the primary, then on a streaming replica.

    ``-- --smoke`` runs in seconds. Starts its own primary and replica (initdb, pg_basebackup).
    """
    install(session, "bench")
    session.run("python", "bench/replicas.py", *session.posargs)


@nox.session
def bench_seal(session: nox.Session) -> None:
    """What sealing costs writers (on against off) and verify's rate on 1M events.

    ``-- --rows N`` sets the size verified; ``-- --smoke`` runs in seconds;
    ``-- --out DIR`` writes seal.md and .json. Needs PostgreSQL.
    """
    install(session, "bench")
    session.run("python", "bench/seal.py", *session.posargs)


@nox.session
def bench_scale(session: nox.Session) -> None:
    """Two years of events at 20M beside 1M (see bench/scale.py: fill, measure, drop).

    ``-- smoke`` fills, measures and drops two small databases in seconds.
    """
    install(session, "bench")
    session.run("python", "bench/scale.py", *(session.posargs or ["smoke"]))


@nox.session
def bench_sqlite(session: nox.Session) -> None:
    """The SQLite store beside raw ``sqlite3`` on the same file: writes, pages, stats, retention.

    ``-- --rows N`` sets the large file's size (default 1 000 000); ``-- --smoke``
    runs in seconds. Needs no server.
    """
    install(session, "bench")
    session.run("python", "bench/sqlite.py", *session.posargs)


@nox.session
def screenshots(session: nox.Session) -> None:
    """PNGs of the web console in ``docs/`` (needs chromium and chromedriver on the machine)."""
    install(session, "test")
    session.run("python", "scripts/screenshots.py", *session.posargs)


@nox.session
def bench_console(session: nox.Session) -> None:
    """Load time of the web console's first screen on 1M events (PostgreSQL, Chromium)."""
    install(session, "bench", "test")
    session.run("python", "bench/console.py", *session.posargs)
