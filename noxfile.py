"""Development sessions: ``nox`` runs tests, lint and typecheck; ``nox -s bench`` measures."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str, extras: str = "all") -> None:
    """Install the project (not editable, as users get it) and the named groups."""
    session.install(f".[{extras}]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against real PostgreSQL and Redis."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


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
