"""A throwaway PostgreSQL server for tests that stop and start the database.

Fault tests must never stop the shared server, so they start their own::

    from tests.private_postgres import PrivatePostgres

    with PrivatePostgres() as pg:      # initdb + start on a free port
        url = pg.url                   # postgresql://postgres@127.0.0.1:<port>/postgres
        pg.stop()                      # fast shutdown ("immediate" to crash it)
        pg.start()                     # same data, same port
                                       # leaving the block stops it and deletes its files
        with pg.replica() as standby:  # a streaming replica of it (pg_basebackup -R)
            ...

The binaries come from ``SYSEVENTS_TEST_PG_BINDIR``, else the newest
``/usr/lib/postgresql/<version>/bin``, else ``pg_config --bindir`` or ``PATH``.
``initdb`` refuses to run as root, so as root every server command runs as the
``postgres`` OS user. ``PrivatePostgres.unavailable_reason()`` says why a server
cannot be started here (``None`` when it can), for a clean skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

__all__ = ["PrivatePostgres"]

StopMode = Literal["smart", "fast", "immediate"]


def _bin_dir() -> Path | None:
    configured = os.environ.get("SYSEVENTS_TEST_PG_BINDIR")
    if configured:
        return Path(configured)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(versions):
        if (candidate / "pg_ctl").is_file():
            return candidate
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, check=True)
        candidate = Path(out.stdout.decode().strip())
        if (candidate / "pg_ctl").is_file():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostgres:
    """A PostgreSQL server of the test's own, on a free port, trusting local connections."""

    def __init__(self, primary: PrivatePostgres | None = None) -> None:
        self.primary = primary
        """The server this one is a streaming replica of, if it is one."""
        self.bin_dir = _bin_dir()
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        """The URL of the server's ``postgres`` database."""
        self._root: Path | None = None
        self._running = False

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why no private server can be started here, or ``None``."""
        bin_dir = _bin_dir()
        if bin_dir is None or not (bin_dir / "initdb").is_file():
            return "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.geteuid() == 0:
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user to run initdb"
            if shutil.which("runuser") is None:
                return "running as root and runuser is missing"
        return None

    @property
    def running(self) -> bool:
        """Whether the server was started and not stopped since."""
        return self._running

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            log = self._log()
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )

    def _log(self) -> str:
        if self._root is None:
            return ""
        with contextlib.suppress(OSError):
            return (self._root / "server.log").read_text()[-2000:]
        return ""

    def _init(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self._root = Path(tempfile.mkdtemp(prefix="sysevents-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self._root, user="postgres", group=None)
        if self.primary is not None:
            self._run(
                "pg_basebackup",
                *("-D", str(self._root / "data"), "-h", "127.0.0.1", "-p", str(self.primary.port)),
                *("-U", "postgres", "-X", "stream", "-R", "--no-sync"),
            )
            return
        self._run(
            "initdb",
            "-D",
            str(self._root / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server (creating its data directory the first time); waits until ready."""
        if self._running:
            return
        if self._root is None:
            self._init()
        assert self._root is not None
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self._root / "data"),
            "-l",
            str(self._root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )
        self._running = True

    def replica(self) -> PrivatePostgres:
        """A streaming replica of this (running) server, on a port of its own; not started."""
        return PrivatePostgres(primary=self)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` closes sessions cleanly, ``immediate`` is a crash."""
        if not self._running or self._root is None:
            return
        self._run("pg_ctl", "-D", str(self._root / "data"), "-m", mode, "-w", "-t", "30", "stop")
        self._running = False

    def cleanup(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self._running = False

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
