"""How fast the web console's first screen is on a large store: ``nox -s bench_console``.

Fills a fresh PostgreSQL database with ``--rows`` events (1 000 000 by default,
as ``bench/run.py`` does), serves it with ``sysevents serve``, and loads
``/ui`` in a headless Chromium with its cache disabled, ``--runs`` times per
view. For each load it reads the page's own performance marks: when the first
page of events is on screen (``sysevents:rows``) and when the stats and the
histogram are drawn too (``sysevents:ready``), from the start of navigation.
Each API request the first screen makes is also timed alone, with the same
parameters, to show where the time goes. Medians are reported, and written
into the console section of ``bench/notes.md`` (which ``bench/run.py`` copies into
``bench/results.md``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from fill import COPY_SQL, SERVER_URL, Events, create_database, drop_database  # noqa: E402
from tests.http.browser import chrome  # noqa: E402
from tests.http.served import serve  # noqa: E402

from sysevents.migrate import upgrade  # noqa: E402

VIEWS = {
    "every event": "",
    "last day, warning and worse": "?range=24h&min_severity=warning",
    "one type, last week": "?range=7d&event_type=deploy",
    "search in messages": "?q=node-17",
}
MARKS = """
const at = (name) => performance.getEntriesByName(name).at(-1)?.startTime ?? null;
const nav = performance.getEntriesByType('navigation')[0];
return {rows: at('sysevents:rows'), ready: at('sysevents:ready'),
        dom: nav ? nav.domContentLoadedEventEnd : null};
"""
START, END = "<!-- console bench: start -->", "<!-- console bench: end -->"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=SERVER_URL,
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="loads per view (median reported)")
    parser.add_argument("--database", default="sysevents_bench_console")
    parser.add_argument("--reuse", action="store_true", help="use the database as it is")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    # notes.md: bench/run.py copies it into results.md, so the figures survive a rerun.
    parser.add_argument("--out", type=Path, default=HERE / "notes.md")
    return parser.parse_args(argv)


def fill(url: str, rows: int, chunk: int = 200_000) -> dict[str, Any]:
    """COPY ``rows`` events (``fill.Events``, spread over 90 days), then fold the rollups."""
    started = time.perf_counter()
    events = Events()
    with psycopg.connect(url, autocommit=True) as conn:
        done = 0
        while done < rows:
            size = min(chunk, rows - done)
            with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                for _ in range(size):
                    copy.write_row(events.row())
            done += size
        conn.execute("SELECT system_event_rollups_fold()")
        conn.execute("VACUUM ANALYZE")
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def call_median(url: str, runs: int) -> float | str:
    try:
        return median([timed_get(url) for _ in range(runs)])
    except urllib.error.HTTPError as exc:
        return f"status {exc.code}"


def first_screen(driver: Any, url: str) -> dict[str, float]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
    )
    marks: dict[str, float] = driver.execute_script(MARKS)
    return marks


def requests_of(driver: Any) -> list[str]:
    """The API requests the page made (from the browser's own resource timing)."""
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/api/'))"
    )
    return list(names)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.reuse:
        from urllib.parse import urlsplit, urlunsplit

        url = urlunsplit(urlsplit(args.postgres_url)._replace(path="/" + args.database))
    else:
        url = create_database(args.postgres_url, args.database)
        upgrade(url)
        print(f"filling {args.rows:,} events by COPY…", flush=True)
        print(f"  {fill(url, args.rows)}", flush=True)
    results = []
    try:
        with (
            serve(env={"SYSEVENTS_DATABASE_URL": url}) as base,
            tempfile.TemporaryDirectory() as tmp,
        ):
            driver = chrome(Path(tmp), width=1400, height=1000)
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
            try:
                for view, query in VIEWS.items():
                    loads = [first_screen(driver, f"{base}/ui{query}") for _ in range(args.runs)]
                    calls = {}
                    for request in requests_of(driver):
                        path = request.split("?")[0].removeprefix(base)
                        calls[path] = call_median(request, args.runs)
                    result = {
                        "view": view,
                        "query": query or "(none)",
                        "rows_ms": median([m["rows"] for m in loads]),
                        "ready_ms": median([m["ready"] for m in loads]),
                        "dom_ms": median([m["dom"] for m in loads]),
                        "calls": calls,
                    }
                    print(result, flush=True)
                    results.append(result)
            finally:
                driver.quit()
    finally:
        if not (args.keep or args.reuse):
            drop_database(args.postgres_url, args.database)
    return results


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        START,
        "## Console: first screen",
        "",
        f"Generated by `bench/console.py` (`nox -s bench_console`): {args.rows:,} events in "
        f"PostgreSQL, no Redis, `sysevents serve` on this machine, headless Chromium with its "
        f"cache disabled; medians of {args.runs} loads per view, milliseconds from the start "
        "of navigation. *Rows*: the first 100 events on screen; *ready*: the stats and the "
        "histogram drawn too. The API calls are the same requests timed alone.",
        "",
        "| view | address | page parsed | rows | ready | API calls alone (median ms) |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        calls = ", ".join(f"`{path}` {ms}" for path, ms in r["calls"].items())
        lines.append(
            f"| {r['view']} | `{r['query']}` | {r['dom_ms']} | {r['rows_ms']} | "
            f"{r['ready_ms']} | {calls} |"
        )
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    section = report(run(args), args)
    text = args.out.read_text() if args.out.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    args.out.write_text(text)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
