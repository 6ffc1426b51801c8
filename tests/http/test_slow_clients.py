"""Slow, idle and vanishing clients against a real ``sysevents serve``."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from tests.waiting import eventually_sync

from .served import serve_process

pytestmark = pytest.mark.slow


@pytest.fixture(params=["httptools", "h11"])
def parser(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each of uvicorn's HTTP parsers the deadlines extend."""
    return {"SYSEVENTS_HTTP_HTTP": request.param}


FAST = ("--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1")


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def open_socket(url: str) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=10)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (EOF or reset); never blocks."""
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 4")  # a 4xx, then the close


def health(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
        status: int = response.status
        return status


def test_idle_and_trickling_clients_are_cut_off_while_others_are_served(
    parser: dict[str, str],
) -> None:
    with serve_process(*FAST, env=parser) as served:
        url = served.url
        stalled: list[socket.socket] = []
        for n in range(200):
            sock = open_socket(url)
            if n % 3 == 1:  # half a request line and header
                sock.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow")
            elif n % 3 == 2:  # whole headers, half the body
                sock.send(
                    b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 100\r\n\r\n{"event_type":'
                )
            stalled.append(sock)  # n % 3 == 0: sends nothing at all
        assert health(url) == 200  # others are served meanwhile
        started = time.monotonic()
        try:
            eventually_sync(
                lambda: all(closed_by_server(s) for s in stalled),
                "every stalled connection was closed",
                seconds=30,
            )
        finally:
            for sock in stalled:
                sock.close()
        assert time.monotonic() - started < 30
        assert health(url) == 200
        log = served.stop()
    assert "Traceback" not in log
    assert "ERROR" not in log


def test_a_client_that_hangs_up_mid_body_is_no_error(parser: dict[str, str]) -> None:
    with serve_process("--body-timeout", "30", env=parser) as served:
        for _ in range(5):
            sock = socket.create_connection(address(served.url), timeout=10)
            sock.send(
                b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"event_type": "x", "mess'
            )
            sock.close()
        assert health(served.url) == 200
        eventually_sync(lambda: "disconnected" in served.output, "the disconnect was noticed")
        log = served.stop()
    assert "Traceback" not in log
    assert "500" not in log
    assert "client disconnected during POST /api/events" in log


def test_the_fast_parser_is_the_default_and_both_carry_the_deadlines() -> None:
    from sysevents_http import deadlines

    assert deadlines.protocol_class("auto") is deadlines.DeadlineHttpToolsProtocol
    assert deadlines.protocol_class("h11") is deadlines.DeadlineH11Protocol
    for choice in ("httptools", "h11"):
        assert issubclass(deadlines.protocol_class(choice), deadlines._Deadlines)
