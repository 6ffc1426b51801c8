"""Settings, connect() and the import boundary of the optional drivers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import pytest

import sysevents
from sysevents import ConfigurationError, MemoryEventRepository, Settings
from sysevents.model import EventLimits


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "memory://"
    assert settings.redis_url is None
    assert (settings.pool_min_size, settings.pool_max_size) == (2, 10)
    assert (settings.cache_event_ttl, settings.cache_stats_ttl) == (300, 30)
    assert settings.count_cap == 10_000
    assert settings.limits == EventLimits()


def test_environment_then_arguments() -> None:
    env = {
        "SYSEVENTS_DATABASE_URL": "postgresql://db/app",
        "SYSEVENTS_POOL_MAX_SIZE": "20",
        "SYSEVENTS_MAX_MESSAGE_BYTES": "1000",
        "SYSEVENTS_REDIS_URL": "",
        "OTHER_THING": "ignored",
    }
    settings = Settings.from_env(env, pool_max_size=30, redis_url=None)
    assert settings.database_url == "postgresql://db/app"
    assert settings.pool_max_size == 30
    assert settings.redis_url is None
    assert settings.limits.max_message_bytes == 1000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SYSEVENTS_POOL_MAX_SIZE": "many"}, "SYSEVENTS_POOL_MAX_SIZE"),
        ({"SYSEVENTS_TIMEOUT": "-1"}, "SYSEVENTS_TIMEOUT"),
        ({"SYSEVENTS_POOL_MIN_SIZE": "5", "SYSEVENTS_POOL_MAX_SIZE": "2"}, "pool_min_size"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


def test_the_environment_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSEVENTS_COUNT_CAP", "7")
    assert Settings.from_env().count_cap == 7
    assert sysevents.connect().count_cap == 7  # type: ignore[attr-defined]


def test_connect_by_scheme() -> None:
    assert isinstance(sysevents.connect("memory://"), MemoryEventRepository)
    for url in ("mysql://x/y", "nothing"):
        with pytest.raises(ConfigurationError, match="memory://"):
            sysevents.connect(url)


def test_a_sqlite_url_names_a_file() -> None:
    from sysevents.stores.sqlite import SqliteEventRepository

    relative = sysevents.connect("sqlite:///events.db")
    assert isinstance(relative, SqliteEventRepository)
    assert relative.path == "events.db"
    assert isinstance(absolute := sysevents.connect("sqlite:////var/x.db"), SqliteEventRepository)
    assert absolute.path == "/var/x.db"
    for url in ("sqlite://host/x.db", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(ConfigurationError, match="sqlite:///"):
            sysevents.connect(url)


def test_connect_checks_its_options() -> None:
    with pytest.raises(ConfigurationError, match="count_cap"):
        sysevents.connect("memory://", count_cap=-1)
    with pytest.raises(ConfigurationError, match="pool_max_size"):
        sysevents.connect(settings=Settings(), pool_max_size=0)
    with pytest.raises(ConfigurationError, match="colour"):
        sysevents.connect(settings=Settings(), colour="red")


def test_a_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def without_drivers(name: str, *args: Any) -> Any:
        if name in ("sysevents.stores.postgres", "sysevents.cache", "sysevents.stores.http"):
            driver = {"sysevents.stores.postgres": "psycopg", "sysevents.cache": "redis"}.get(
                name, "httpx"
            )
            raise ModuleNotFoundError(f"No module named {driver!r}", name=driver)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_drivers)
    with pytest.raises(ConfigurationError, match=r'pip install "sysevents\[postgres\]"'):
        sysevents.connect("postgresql://db/app")
    with pytest.raises(ConfigurationError, match=r'pip install "sysevents\[redis\]"'):
        sysevents.connect("memory://", redis_url="redis://localhost")
    with pytest.raises(ConfigurationError, match=r'pip install "sysevents\[http\]"'):
        sysevents.connect("http://api")


def test_import_sysevents_imports_no_optional_driver() -> None:
    code = (
        "import sys, sysevents, sysevents.emitter, sysevents.logging.handler\n"
        "repo = sysevents.connect('memory://')\n"
        "heavy = {'psycopg', 'psycopg_pool', 'sqlalchemy', 'alembic', 'redis', 'litestar',"
        " 'httpx', 'uvicorn'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_refuses_bad_urls_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sysevents.cli import main

    monkeypatch.delenv("SYSEVENTS_DATABASE_URL", raising=False)
    assert main(["serve", "--database-url", "mysql://x/y"]) == 2
    assert "unknown database URL scheme mysql://" in capsys.readouterr().err
    assert main(["migrate"]) == 2
    assert "--database-url" in capsys.readouterr().err
