"""The console in a real headless Chromium, against a server holding a few thousand events.

Every test asserts on what the page shows. The browser resolves no host but
this machine, and each test checks afterwards that it asked nothing of any
other origin.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from sysevents.keys import new_key
from tests.conftest import skip_or_fail

from .browser import CHROMEDRIVER, CHROMIUM, NEEDLE, chrome, post, sample_events, seed
from .served import serve

pytestmark = pytest.mark.slow

EVENTS = 3000
WAIT = 20


@pytest.fixture(scope="module")
def tools() -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        skip_or_fail(
            "the browser tests need chromium and chromedriver (apt-get install chromium-driver)"
        )


@pytest.fixture(scope="module")
def server(tools: None) -> Iterator[str]:
    with serve() as url:
        seed(url, sample_events(EVENTS - 1))
        yield url


@pytest.fixture(scope="module")
def driver(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    browser = chrome(tmp_path_factory.mktemp("profile"))
    # A zone far from UTC, so the local times shown differ from UTC.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(autouse=True)
def only_local_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every request the browser made went to this machine."""
    yield
    if "driver" not in request.fixturenames:
        return
    browser = request.getfixturevalue("driver")
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            parts = urllib.parse.urlsplit(url)
            if parts.scheme in {"http", "https", "ws", "wss"}:
                assert parts.hostname == "127.0.0.1", url
            else:
                assert parts.scheme in {"data", "chrome", "about", "blob"}, url


def api(url: str, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=10) as response:
        return json.loads(response.read())


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def loads(driver: Any) -> int:
    """How many times the page finished loading a view."""
    return int(driver.execute_script("return document.body.dataset.ready || '0'"))


def after_load(driver: Any, action: Callable[[], Any]) -> None:
    """Do ``action`` and wait until the view it causes has loaded."""
    before = loads(driver)
    action()
    wait(driver, lambda d: loads(d) > before)


def open_console(driver: Any, url: str, query: str = "") -> None:
    driver.get(f"{url}/ui{query}")
    wait(driver, lambda d: loads(d) >= 1)


ROWS = """
return [...document.querySelectorAll('#stream a.line')].map(a => ({
  id: a.dataset.id,
  time: a.querySelector('time').getAttribute('datetime'),
  shown: a.querySelector('time').textContent,
  utc: a.querySelector('time').title,
  severity: a.querySelector('.sev').textContent,
  type: a.querySelector('.type').textContent,
  source: a.querySelector('.source').textContent,
  message: a.querySelector('.message').textContent,
}));
"""


def rows(driver: Any) -> list[dict[str, str]]:
    return list(driver.execute_script(ROWS))


def query_of(driver: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_first_screen_shows_the_newest_events_and_the_stats(driver: Any, server: str) -> None:
    open_console(driver, server)
    shown = rows(driver)
    assert len(shown) == 100
    times = [parse(r["time"]) for r in shown]
    assert times == sorted(times, reverse=True)
    newest = api(server, "/api/events", limit=1)["items"][0]
    assert shown[0]["id"] == str(newest["id"])
    assert shown[0]["message"] == newest["message"].split("\n")[0]
    assert shown[0]["severity"] == newest["severity"]
    # Local time of the viewer (UTC+05:30 here), UTC on hover.
    first = parse(shown[0]["time"])
    local = first.astimezone(UTC) + timedelta(hours=5, minutes=30)
    assert shown[0]["shown"].startswith(local.strftime("%Y-%m-%d %H:%M:%S"))
    assert shown[0]["utc"].startswith(first.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    assert shown[0]["utc"].endswith("UTC")
    # Severity as a colour and a word.
    colour = driver.execute_script(
        "return getComputedStyle(document.querySelector('#stream .sev-error .dot, "
        "#stream .sev-info .dot')).backgroundColor"
    )
    assert colour not in ("", "rgba(0, 0, 0, 0)")
    stats = api(server, "/api/events/stats")
    glance = driver.find_element(By.ID, "glance").text
    assert f"{stats['total']:,}" in glance
    assert f"{stats['last_24h']:,}" in glance
    top_type = max(stats["by_type"], key=stats["by_type"].get)
    assert top_type in glance
    assert f"({stats['total']:,} matching)" in driver.find_element(By.ID, "count").text


def test_filters_narrow_the_list_and_live_in_the_address(driver: Any, server: str) -> None:
    open_console(driver, server)
    after_load(driver, driver.find_element(By.CSS_SELECTOR, "input[value='error']").click)
    shown = rows(driver)
    assert shown
    assert {r["severity"] for r in shown} == {"error"}
    assert query_of(driver)["severity"] == ["error"]

    types = driver.find_element(By.NAME, "event_type")
    types.send_keys("deploy, user.login")
    after_load(driver, lambda: types.send_keys(Keys.ENTER))
    shown = rows(driver)
    assert shown
    assert {r["type"] for r in shown} <= {"deploy", "user.login"}
    assert {r["severity"] for r in shown} == {"error"}
    assert query_of(driver)["event_type"] == ["deploy", "user.login"]
    expected = api(
        server, "/api/events/stats", severity="error", event_type=["deploy", "user.login"]
    )
    assert f"({expected['total']:,} matching)" in driver.find_element(By.ID, "count").text

    # A bookmark of this address shows the same view, the form filled in.
    bookmark = driver.current_url
    driver.get("about:blank")
    driver.get(bookmark)
    wait(driver, lambda d: loads(d) >= 1)
    assert rows(driver) == shown
    assert driver.find_element(By.NAME, "event_type").get_attribute("value") == "deploy, user.login"
    assert driver.find_element(By.CSS_SELECTOR, "input[value='error']").is_selected()

    # Quick pick of a time range, minimum severity and source.
    after_load(driver, lambda: driver.find_element(By.ID, "clear").click())
    after_load(driver, lambda: Select(driver.find_element(By.NAME, "range")).select_by_value("1h"))
    assert query_of(driver)["range"] == ["1h"]
    hour_ago = datetime.now(UTC) - timedelta(hours=1, minutes=1)
    assert all(parse(r["time"]) >= hour_ago for r in rows(driver))
    after_load(
        driver,
        lambda: Select(driver.find_element(By.NAME, "min_severity")).select_by_value("warning"),
    )
    assert {r["severity"] for r in rows(driver)} <= {"warning", "error", "critical"}
    source = driver.find_element(By.NAME, "source")
    source.send_keys("worker")
    after_load(driver, lambda: source.send_keys(Keys.ENTER))
    assert rows(driver)
    assert {r["source"] for r in rows(driver)} == {"worker"}

    # Back goes to the previous view.
    after_load(driver, driver.back)
    assert "source" not in query_of(driver)
    assert len({r["source"] for r in rows(driver)}) > 1


def test_picking_a_figure_of_the_stats_filters_by_it(driver: Any, server: str) -> None:
    open_console(driver, server)
    chip = driver.find_element(By.CSS_SELECTOR, "#glance .chip.sev-critical")
    after_load(driver, chip.click)
    assert {r["severity"] for r in rows(driver)} == {"critical"}
    assert query_of(driver)["severity"] == ["critical"]


def test_search_box_finds_the_event(driver: Any, server: str) -> None:
    open_console(driver, server)
    box = driver.find_element(By.NAME, "q")
    box.send_keys("disk FULL on")
    after_load(driver, lambda: box.send_keys(Keys.ENTER))
    shown = rows(driver)
    assert [r["message"] for r in shown] == [NEEDLE]
    assert query_of(driver)["q"] == ["disk FULL on"]


def test_details_filter(driver: Any, server: str) -> None:
    open_console(driver, server)
    driver.find_element(By.ID, "add-detail").click()
    path = driver.switch_to.active_element
    path.send_keys("mount")
    value = driver.find_element(By.CSS_SELECTOR, ".detail-value")
    value.send_keys("/var")
    after_load(driver, lambda: value.send_keys(Keys.ENTER))
    assert [r["message"] for r in rows(driver)] == [NEEDLE]
    assert query_of(driver)["details.mount"] == ["/var"]
    driver.find_element(By.CSS_SELECTOR, ".detail-value").clear()
    value = driver.find_element(By.CSS_SELECTOR, ".detail-path")
    value.clear()
    value.send_keys("user.id")
    other = driver.find_element(By.CSS_SELECTOR, ".detail-value")
    other.send_keys("7")
    after_load(driver, lambda: other.send_keys(Keys.ENTER))
    expected = api(server, "/api/events/stats", **{"details.user.id": "7"})["total"]
    assert expected > 0
    assert f"({expected:,} matching)" in driver.find_element(By.ID, "count").text


def test_opening_an_event_shows_every_field_and_a_link(driver: Any, server: str) -> None:
    open_console(driver, server, "?event_type=user.login")
    line = driver.find_element(By.CSS_SELECTOR, "#stream a.line")
    event_id = line.get_attribute("data-id")
    event = api(server, f"/api/events/{event_id}")
    line.click()
    detail = wait(driver, lambda d: d.find_element(By.ID, "detail"))
    wait(driver, lambda d: detail.is_displayed())
    assert driver.switch_to.active_element.get_attribute("id") == "detail-title"
    text = detail.text
    assert f"Event {event_id}" in text
    for value in [event["event_type"], event["severity"], event["message"]]:
        assert value in text
    assert "Written by" in text
    assert event["written_by"] == "anonymous"  # an open server's caller
    assert "anonymous" in text
    assert query_of(driver)["event"] == [event_id]
    link = driver.find_element(By.ID, "detail-link").get_attribute("value")
    assert f"event={event_id}" in link
    for key in event["details"]:
        assert json.dumps(key) in text
    assert f'"name": "{event["details"]["user"]["name"]}"' in text
    # Objects fold: closing one hides its members.
    inner = driver.find_element(By.CSS_SELECTOR, ".json details details summary")
    member = driver.find_element(By.CSS_SELECTOR, ".json details details .j-line")
    assert member.is_displayed()
    inner.click()
    wait(driver, lambda d: not member.is_displayed())
    # Escape closes it and gives the focus back to the line.
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(driver, lambda d: not detail.is_displayed())
    assert driver.switch_to.active_element.get_attribute("data-id") == event_id
    # The copied link opens the same event directly.
    driver.get(link)
    wait(driver, lambda d: d.find_element(By.ID, "detail").is_displayed())
    wait(driver, lambda d: f"Event {event_id}" in d.find_element(By.ID, "detail").text)


def test_an_event_can_be_opened_by_keyboard_alone(driver: Any, server: str) -> None:
    open_console(driver, server)
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to the events"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    for _ in range(60):
        focused = driver.switch_to.active_element
        if focused.get_attribute("data-id"):
            break
        focused.send_keys(Keys.TAB)
    else:
        pytest.fail("no event line reached by Tab")
    event_id = focused.get_attribute("data-id")
    focused.send_keys(Keys.ENTER)
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "detail-title")
    assert f"Event {event_id}" in driver.find_element(By.ID, "detail").text


LABELS = """
return [...document.querySelectorAll('input, select, button')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
  .map(el => el.outerHTML);
"""

CONTRAST = """
function rgb(text) { return text.match(/[\\d.]+/g).slice(0, 3).map(Number); }
function luminance([r, g, b]) {
  const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}
const bg = luminance(rgb(getComputedStyle(document.body).backgroundColor));
const worst = [];
for (const el of document.querySelectorAll('#stream .line *, #glance *, #filters label, .muted')) {
  if (!el.textContent.trim()) continue;
  const fg = luminance(rgb(getComputedStyle(el).color));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  if (ratio < 4.5) worst.push([el.className, ratio]);
}
return worst;
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_labels_and_contrast(driver: Any, server: str, scheme: str) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    try:
        open_console(driver, server)
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (scheme == "light")
        assert driver.execute_script(LABELS) == []
        assert driver.execute_script(CONTRAST) == []
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_scrolling_loads_the_next_page(driver: Any, server: str) -> None:
    open_console(driver, server)
    first = rows(driver)
    assert len(first) == 100
    scroll = "const s = document.getElementById('scroller'); s.scrollTop = s.scrollHeight;"
    driver.execute_script(scroll)
    wait(driver, lambda d: len(rows(d)) == 200)
    driver.execute_script(scroll)
    wait(driver, lambda d: len(rows(d)) == 300)
    shown = rows(driver)
    assert shown[:100] == first
    assert len({r["id"] for r in shown}) == 300
    times = [(parse(r["time"]), int(r["id"])) for r in shown]
    assert times == sorted(times, reverse=True)
    expected = api(server, "/api/events", limit=300)["items"]
    assert [r["id"] for r in shown] == [str(e["id"]) for e in expected]


def test_dragging_across_the_histogram_zooms(driver: Any, server: str) -> None:
    open_console(driver, server, "?range=7d")
    over = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#histogram .u-over"))
    bars = driver.find_element(By.CSS_SELECTOR, "#histogram canvas")
    assert bars.size["width"] > 300
    assert "Drag across the chart" in driver.find_element(By.ID, "chart-summary").text
    width = over.size["width"]
    before = loads(driver)
    ActionChains(driver).move_to_element_with_offset(
        over, -width // 10, 0
    ).click_and_hold().move_by_offset(width // 5, 0).release().perform()
    wait(driver, lambda d: loads(d) > before)
    query = query_of(driver)
    since, until = parse(query["since"][0]), parse(query["until"][0])
    assert "range" not in query
    assert timedelta(hours=12) < until - since < timedelta(days=3)
    assert (
        Select(driver.find_element(By.NAME, "range")).first_selected_option.text == "custom range"
    )
    shown = rows(driver)
    assert shown
    assert all(since <= parse(r["time"]) < until for r in shown)
    expected = api(server, "/api/events/stats", since=query["since"][0], until=query["until"][0])
    assert f"({expected['total']:,} matching)" in driver.find_element(By.ID, "count").text


def test_live_tail_puts_new_events_on_top_and_holds_them_while_scrolled_away(
    driver: Any, server: str
) -> None:
    open_console(driver, server)
    driver.find_element(By.ID, "tail").click()
    wait(driver, lambda d: d.find_element(By.ID, "tail-state").text == "live")
    now = datetime.now(UTC).isoformat()
    post(
        server,
        "/api/events",
        {"event_type": "tail.test", "message": "fresh off the press", "timestamp": now},
    )
    wait(driver, lambda d: rows(d)[0]["message"] == "fresh off the press")

    # Scrolled away: the next one is held back, and shown on request.
    driver.execute_script("document.getElementById('scroller').scrollTop = 600")
    post(
        server, "/api/events", {"event_type": "tail.test", "message": "held back", "timestamp": now}
    )
    banner = driver.find_element(By.ID, "paused")
    wait(driver, lambda d: banner.is_displayed())
    assert "1 new event" in banner.text
    assert rows(driver)[0]["message"] == "fresh off the press"
    driver.find_element(By.ID, "show-new").click()
    wait(driver, lambda d: rows(d)[0]["message"] == "held back")
    assert not banner.is_displayed()
    driver.find_element(By.ID, "tail").click()
    wait(driver, lambda d: d.find_element(By.ID, "tail-state").text == "")


def test_key_prompt_when_auth_is_on(tools: None, tmp_path: Path) -> None:
    key, _, _ = new_key()
    with serve(env={"SYSEVENTS_API_KEYS": f"console:read+write:{key}"}) as url:
        seed(url, sample_events(300), key)
        browser = chrome(tmp_path)
        try:
            browser.get(f"{url}/ui")
            dialog = wait(browser, lambda d: d.find_element(By.ID, "key-dialog"))
            wait(browser, lambda d: dialog.is_displayed())
            assert "needs an API key" in dialog.text
            assert rows(browser) == []
            field = browser.find_element(By.ID, "key-input")
            assert browser.switch_to.active_element == field
            field.send_keys("se_wrong_wrong" + key[-8:], Keys.ENTER)
            wait(browser, lambda d: "refused" in dialog.text)
            field.send_keys(key, Keys.ENTER)
            wait(browser, lambda d: len(rows(d)) == 100)
            assert not dialog.is_displayed()
            assert (
                browser.execute_script("return sessionStorage.getItem('sysevents.api-key')") == key
            )
            assert browser.get_cookies() == []
            assert key not in browser.current_url
            # A key that stops working brings the prompt back.
            browser.execute_script("sessionStorage.setItem('sysevents.api-key', 'se_revoked_x')")
            browser.refresh()
            dialog = wait(browser, lambda d: d.find_element(By.ID, "key-dialog"))
            wait(browser, lambda d: dialog.is_displayed() and "refused" in dialog.text)
        finally:
            browser.quit()


def test_the_tail_sends_the_key_in_a_header(tools: None, tmp_path: Path) -> None:
    key, _, _ = new_key()
    with serve(env={"SYSEVENTS_API_KEYS": f"console:read+write:{key}"}) as url:
        browser = chrome(tmp_path)
        try:
            browser.get(f"{url}/ui")
            browser.execute_script(f"sessionStorage.setItem('sysevents.api-key', '{key}')")
            browser.refresh()
            wait(browser, lambda d: loads(d) >= 1)
            browser.find_element(By.ID, "tail").click()
            wait(browser, lambda d: d.find_element(By.ID, "tail-state").text == "live")
            post(
                url, "/api/events", {"event_type": "tail.keyed", "message": "seen with a key"}, key
            )
            try:
                wait(browser, lambda d: rows(d) and rows(d)[0]["message"] == "seen with a key")
            except TimeoutException:
                pytest.fail(f"not shown; rows: {rows(browser)[:2]}")
            for entry in browser.get_log("performance"):
                message = json.loads(entry["message"])["message"]
                if message["method"] == "Network.requestWillBeSent":
                    assert key not in message["params"]["request"]["url"]
        finally:
            browser.quit()
