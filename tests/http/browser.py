"""A real headless Chromium driven by Selenium, and a served store of sample events.

Shared by the console's browser tests and the screenshot script. The browser
resolves no host but this machine, so no request can leave it.
"""

from __future__ import annotations

import json
import random
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

TYPES = ["deploy", "health_check", "user.login", "payment.failed", "cache.miss", "job.finished"]
SOURCES = ["api-1", "api-2", "worker", "scheduler", "billing"]
SEVERITY_WEIGHTS = {"debug": 30, "info": 45, "warning": 15, "error": 8, "critical": 2}
REGIONS = ["eu-west", "us-east", "ap-south"]
NEEDLE = "Disk full on /var/lib/postgresql"
"""The message of the one event the search tests look for."""


def chrome(profile: Path, *, width: int = 1400, height: int = 900, dark: bool = False) -> Any:
    """A headless Chromium (Debian's, with its chromedriver) that reaches this machine only."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        # No internet, as on an offline machine: only this server resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # Given both paths, Selenium needs no driver manager (which would go online).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    if dark:
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
        )
    return driver


def sample_events(
    count: int, *, seed: int = 15, now: datetime | None = None
) -> list[dict[str, Any]]:
    """``count`` varied events over the last week, and one with :data:`NEEDLE` 30 minutes ago."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    severities = list(SEVERITY_WEIGHTS)
    weights = list(SEVERITY_WEIGHTS.values())
    events: list[dict[str, Any]] = []
    for n in range(count - 1):
        event_type = rng.choice(TYPES)
        # More events lately, as in a real log; a burst of errors two days ago.
        age = timedelta(seconds=rng.expovariate(1 / (2 * 86400)) % (7 * 86400) + 60)
        severity = rng.choices(severities, weights)[0]
        if rng.random() < 0.05:
            age = timedelta(days=2, minutes=rng.uniform(0, 90))
            severity = "error"
        events.append(
            {
                "event_type": event_type,
                "severity": severity,
                "message": f"{event_type.replace('.', ' ')} #{n}: "
                + rng.choice(["done", "took longer than usual", "retrying", "ok", "refused"]),
                "source": rng.choice(SOURCES),
                "timestamp": (now - age).isoformat(),
                "details": {
                    "region": rng.choice(REGIONS),
                    "user": {"id": rng.randrange(1, 50), "name": f"user{rng.randrange(50)}"},
                    "duration_ms": round(rng.uniform(1, 900), 1),
                    "tags": rng.sample(["a", "b", "c", "d"], 2),
                },
            }
        )
    events.append(
        {
            "event_type": "disk.alert",
            "severity": "critical",
            "message": NEEDLE,
            "source": "db-1",
            "timestamp": (now - timedelta(minutes=30)).isoformat(),
            "details": {"region": "eu-west", "mount": "/var", "free_bytes": 0, "host": "db-1"},
        }
    )
    return events


def post(url: str, path: str, body: Any, key: str | None = None) -> Any:
    """POST ``body`` as JSON; the decoded answer."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def seed(url: str, events: list[dict[str, Any]], key: str | None = None) -> None:
    """Store ``events`` through the API, a thousand at a time."""
    for start in range(0, len(events), 1000):
        post(url, "/api/events/batch", {"events": events[start : start + 1000]}, key)
