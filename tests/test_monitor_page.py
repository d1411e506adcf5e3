"""The monitor page in a real headless Chromium: during a simulated call the conversation appears without a reload."""
from __future__ import annotations

import base64
import os
import shutil
import tempfile
import time

import pytest

from tests.test_monitor import AUTH, PASSWORD
from tests.test_phone_dialogue import GREETING, place, wait_until

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1100,820")


@pytest.fixture
def browser():
    """Debian's Chromium through its own chromedriver (no driver download), sending the operator's Basic auth."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chatline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    token = base64.b64encode(":".join(AUTH).encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def bubbles(driver) -> list[tuple[str, str]]:
    """(kind, first line) of each chat bubble on the page."""
    return [(li.get_attribute("data-type"), li.text.splitlines()[0] if li.text else "")
            for li in driver.find_elements("css selector", "#bubbles li")]


def test_the_conversation_appears_live_in_the_page(twilio, speech, chatbot, start_gateway, browser, tmp_path):
    from standins.twilio import Caller

    gateway = start_gateway(MONITOR_PASSWORD=PASSWORD)
    browser.get(gateway.url + "/monitor")
    assert "Chatline monitor" in browser.title and "no live calls" in browser.page_source
    call = place(twilio, Caller.at_times([(12.0, "hello"), (24.0, "goodbye")]))
    # The live list refreshes by itself: the call shows up, its duration ticking.
    link = wait_until(lambda: browser.find_elements("css selector", "#live a"), 15)
    assert link and link[0].text == "+15551230001"
    first = browser.find_element("css selector", "#live .duration").text
    assert wait_until(lambda: browser.find_element("css selector", "#live .duration").text != first, 5)
    link[0].click()
    assert wait_until(lambda: bubbles(browser), 10) and bubbles(browser)[0] == ("bot", GREETING)
    browser.execute_script("window.sameDocument = true;")  # gone if the page reloads
    said_yet = [text for kind, text in bubbles(browser) if kind == "caller"]
    assert wait_until(lambda: ("bot", "Goodbye! Thanks for calling.") in bubbles(browser), 40), bubbles(browser)
    assert browser.execute_script("return window.sameDocument === true;")
    seen = [(kind, text) for kind, text in bubbles(browser) if kind in ("bot", "caller")]  # a reprompt may come too
    assert [k for k, _ in seen][:5] == ["bot", "caller", "bot", "caller", "bot"], seen
    assert seen[1][1].replace(" ", "") == "hello" and seen[2] == ("bot", "Hi, how are you?")
    assert "goodbye" not in [t.replace(" ", "") for t in said_yet]  # it arrived while the page was open
    answer = browser.find_elements("css selector", "#bubbles li.bot")[1].text
    assert "chatbot" in answer and " ms + gateway " in answer  # each turn's latency
    assert call.wait_ended(timeout=60), call.transcript()
    assert wait_until(lambda: browser.find_element("id", "call-status").text == "bot-hangup", 15)
    assert ("end", "call ended (completed)") in bubbles(browser)
    time.sleep(0.5)
    shot = tmp_path / "monitor.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("CHATLINE_SCREENSHOT"):  # for the README: CHATLINE_SCREENSHOT=docs/monitor.png pytest ...
        shutil.copy(shot, os.environ["CHATLINE_SCREENSHOT"])
