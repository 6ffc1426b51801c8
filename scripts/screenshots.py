"""Screenshots of the web console for the docs: ``nox -s screenshots`` (or run this file).

Starts ``sysevents serve`` on the memory store, records a few thousand sample
events, and saves PNGs of the main views in ``docs/`` with a headless Chromium
that reaches no host but this machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from tests.http.browser import chrome, sample_events, seed  # noqa: E402
from tests.http.served import serve  # noqa: E402

SHOTS = {
    "console.png": "the stream, the stats and the histogram of the last week",
    "console-event.png": "one event opened beside the list",
    "console-dark.png": "errors and worse, in dark mode",
    "console-key.png": "the key prompt when auth is on",
}


def loaded(driver: Any, at_least: int = 1) -> None:
    """Wait until the console has loaded its view ``at_least`` times."""
    WebDriverWait(driver, 30).until(
        lambda d: int(d.execute_script("return document.body.dataset.ready || '0'")) >= at_least
    )


def shoot(
    url: str, out: Path, profile: Path, name: str, dark: bool, act: Callable[[Any], None]
) -> None:
    """Open a browser, let ``act`` bring the view up, and save it as ``out/name``."""
    driver = chrome(profile / name, width=1400, height=1000, dark=dark)
    try:
        act(driver)
        driver.save_screenshot(str(out / name))
        print(f"wrote {out / name}: {SHOTS[name]}")
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    """Serve sample events and take every screenshot of :data:`SHOTS`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    args = parser.parse_args(argv)
    from sysevents.keys import new_key

    key, _, _ = new_key()
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(env={"SYSEVENTS_API_KEYS": f"docs:read+write:{key}"}) as url,
    ):
        profile = Path(tmp)
        seed(url, sample_events(3000), key)

        def keyed(driver: Any, query: str) -> None:
            driver.get(f"{url}/ui")
            driver.execute_script("sessionStorage.setItem('sysevents.api-key', arguments[0])", key)
            driver.get(f"{url}/ui{query}")
            loaded(driver)

        def event(driver: Any) -> None:
            keyed(driver, "?range=7d&event_type=user.login")
            driver.find_element(By.CSS_SELECTOR, "#stream a.line").click()
            WebDriverWait(driver, 10).until(
                lambda d: d.find_element(By.ID, "detail").is_displayed()
            )

        def prompt(driver: Any) -> None:
            driver.get(f"{url}/ui")
            WebDriverWait(driver, 10).until(
                lambda d: d.find_element(By.ID, "key-dialog").is_displayed()
            )

        shoot(url, args.out, profile, "console.png", False, lambda d: keyed(d, "?range=7d"))
        shoot(url, args.out, profile, "console-event.png", False, event)
        shoot(
            url,
            args.out,
            profile,
            "console-dark.png",
            True,
            lambda d: keyed(d, "?range=7d&min_severity=error"),
        )
        shoot(url, args.out, profile, "console-key.png", False, prompt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
