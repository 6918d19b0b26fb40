"""The staff console in a real browser (Debian's chromium + chromium-driver, driven by Selenium, headless).

Log in, create a case, see an owner's submitted letter, export the roster. Locally the test is
skipped when chromium is not installed; with CI=true it fails instead (scripts/test installs it).
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import IN_CI
from tests.roster_support import add_owner, valid_numbers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail("CI=true: " + message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def site(tmp_path):
    """The app on SQLite, served by werkzeug on a free loopback port in a thread."""
    from werkzeug.serving import make_server

    from bot import create_app, init_database
    from bot.config import Config
    from storage.staff import add_account

    _browser_or_skip()
    port = _free_port()
    config = Config(database_url=f"sqlite:///{tmp_path / 'browser.sqlite3'}", secret_key="browser-secret",
                    channel_secret="s", channel_access_token="t", line_api_base_url="http://127.0.0.1:9",
                    public_url=f"http://127.0.0.1:{port}", bot_basic_id="@gonghao")
    app = create_app(config)
    init_database(app)
    services = app.extensions["gonghao"]
    add_account(services.db, "amy", "admin", "a long enough password")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", services
    server.shutdown()
    thread.join(timeout=10)
    services.close()


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _browser_or_skip()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--no-first-run",
                     "--window-size=390,844", f"--user-data-dir={tmp_path / ('profile-' + uuid.uuid4().hex[:6])}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def _click_and_load(browser, element) -> None:
    """Clicks a link or submit button and waits until the next page has replaced this one.

    The old page is marked with a window property the next page does not have (Selenium's
    ``staleness_of`` may instead fail with chromedriver's "Node ... does not belong to the
    document" while the page is being swapped).
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.__before_click = true;")
    element.click()

    def replaced(driver) -> bool:
        try:
            return driver.execute_script(
                "return window.__before_click === undefined && document.readyState === 'complete';")
        except WebDriverException:  # between two pages
            return False

    WebDriverWait(browser, 15).until(replaced)


def _wait_for_file(folder: Path, suffix: str, timeout: float = 15) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file was downloaded: {list(folder.iterdir())}")


def test_log_in_create_a_case_see_a_submitted_letter_and_export_the_roster(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, services = site
    browser.get(base + "/staff/cases")
    assert browser.current_url.startswith(base + "/staff/login")  # not logged in yet
    browser.find_element(By.ID, "name").send_keys("amy")
    browser.find_element(By.ID, "password").send_keys("a long enough password")
    _click_and_load(browser, browser.find_element(By.ID, "login"))
    assert browser.current_url == base + "/staff/cases"
    assert "目前還沒有案件" in browser.page_source

    _click_and_load(browser, browser.find_element(By.ID, "new-case"))
    browser.find_element(By.ID, "proposer_name").send_keys("好客雲端股份有限公司")
    browser.find_element(By.ID, "plan_name").send_keys("好客數位共好計畫")
    browser.find_element(By.ID, "vendor_name").send_keys("好客雲端股份有限公司")
    browser.find_element(By.ID, "solution_name").send_keys("好客POS雲端收銀")
    Select(browser.find_element(By.ID, "case_type")).select_by_value("popularization")
    planned = browser.find_element(By.ID, "planned_count")
    planned.clear()
    planned.send_keys("60")
    _click_and_load(browser, browser.find_element(By.ID, "save-case"))
    assert "/staff/cases/" in browser.current_url
    case_id = int(browser.current_url.rstrip("/").rsplit("/", 1)[1])
    owner_code = browser.find_element(By.ID, "owner-code").text
    assert owner_code.startswith("J-")

    number = next(valid_numbers(22_099_000))  # an owner joins with the code and sends the letter
    add_owner(services, case_id, 1, number=number, name="好客小吃店")
    browser.refresh()
    row = browser.find_element(By.ID, "roster").text
    assert "好客小吃店" in row and number in row and "已送出" in row
    _click_and_load(browser, browser.find_element(By.LINK_TEXT, "好客小吃店"))
    assert browser.find_element(By.ID, "letter-status").text.startswith("已送出")
    assert browser.find_element(By.ID, "download-letter").is_displayed()

    browser.get(base + f"/staff/exports?case={case_id}")
    Select(browser.find_element(By.ID, "kind")).select_by_value("roster")
    Select(browser.find_element(By.ID, "format")).select_by_value("xlsx")
    browser.find_element(By.ID, "export").click()
    exported = _wait_for_file(browser.downloads, ".xlsx")
    rows = list(openpyxl.load_workbook(exported, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:4] == ("序", "統編", "公司人數", "公司名稱")
    assert rows[1][:4] == (1, number, 5, "好客小吃店")

    browser.get(base + "/staff/audit")
    assert "export.roster" in browser.find_element(By.ID, "audit").text
