"""The web view in a real browser (Debian chromium + chromedriver, Selenium, headless) against a
real lab: the embedded RTR cache, the router and ExaBGP speakers on 127.0.0.x.

Run under the interop lock (labs use fixed loopback addresses).  Screenshots go to the test's
tmp dir and to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.env import IN_CI, REPO, need_tool

ARTIFACTS = REPO / "tests" / "artifacts"


def _selenium():
    try:
        from selenium import webdriver
    except ImportError:
        msg = "selenium is not installed (pip install -e '.[test]')"
        if IN_CI:
            pytest.fail(msg + " - required under CI=true")
        pytest.skip(msg)
    return webdriver


@pytest.fixture
def browser():
    webdriver = _selenium()
    chromium = need_tool("chromium")
    driver_path = need_tool("chromedriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


class LabProcess:
    """`rov-router lab NAME --web` as a child; the URL is read from its output."""

    def __init__(self, name: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rov_router.cli",
                "lab",
                name,
                "--web",
                "127.0.0.1:0",
                "--speed",
                "4",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self._got = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"web view: (http://\S+)", line)
            if m and self.url is None:
                self.url = m.group(1)
                self._got.set()

    def wait_url(self, timeout: float = 60) -> str:
        if not self._got.wait(timeout):
            raise AssertionError("no web view URL printed:\n" + "".join(self.lines))
        assert self.url is not None
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@contextlib.contextmanager
def lab(name: str, *extra: str):
    p = LabProcess(name, *extra)
    try:
        yield p
    finally:
        p.stop()


def wait_js(drv, script: str, timeout: float = 90, what: str = "") -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = drv.execute_script(script)
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or script}")


def console_errors(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(drv, tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.png"
    drv.save_screenshot(str(out))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(out, ARTIFACTS / out.name)
    assert out.stat().st_size > 10_000
    return out


def test_origin_hijack_page_shows_the_hijack_stopped_at_the_router(browser, tmp_path):
    with lab("origin-hijack") as p:
        browser.get(p.wait_url())
        # the lab's last step: the victim withdrew; only the hijacker's route is left
        wait_js(
            browser,
            "return document.querySelector('#steps li[data-step=\"2\"].ok') !== null",
            what="step 3 of the lab done",
        )
        wait_js(
            browser,
            'return document.querySelector(\'g.ann[data-origin="64666"]'
            '[data-state="invalid"][data-stopped="true"]\') !== null',
            what="the hijacker's route drawn invalid and stopped at the router",
        )
        hijack = browser.execute_script(
            "const g = document.querySelector('g.ann[data-origin=\"64666\"]');"
            "return [g.dataset.prefix, g.dataset.neighbor, g.querySelectorAll('line.stop').length]"
        )
        assert hijack == ["192.0.2.0/24", "127.0.0.12", 1]
        observer = browser.execute_script(
            "const o = document.getElementById('observer-64510');"
            "return o && [...o.querySelectorAll('li')].map(li => li.dataset.prefix || '')"
        )
        assert observer is not None and "192.0.2.0/24" not in observer
        # the route table: verdict and the terminal's reason
        row = wait_js(
            browser,
            "const r = document.querySelector('#routes tr[data-neighbor=\"127.0.0.12\"]');"
            "return r && [r.dataset.state, r.innerText]",
            what="the hijacker's row in the route table",
        )
        assert row[0] == "invalid"
        assert "VRP 192.0.2.0/24-24 AS64496 covers it; origin AS64666 does not match" in row[1]
        # the current step is highlighted, the lesson shown
        assert (
            browser.execute_script(
                "return document.querySelector('#steps li.current').dataset.step"
            )
            == "2"
        )
        assert "ROA" in browser.find_element("id", "lesson").text
        # route detail: the covering VRP with the wrong origin
        browser.execute_script(
            "document.querySelector('#routes tr[data-neighbor=\"127.0.0.12\"]').click()"
        )
        detail = wait_js(
            browser,
            "const d = document.querySelector('#detail .vrp-wrong');return d && d.innerText",
            what="route detail",
        )
        assert "192.0.2.0/24-24 AS64496" in detail
        # RPKI panel: the source with its serial and counts, and a chart
        src = browser.execute_script(
            "return [...document.querySelectorAll('#sources tbody td')].map(t => t.innerText)"
        )
        assert src[0].startswith("lab cache") and src[3] == "1"
        wait_js(browser, "return document.querySelectorAll('#chart polyline').length >= 6")
        # the table catches up with the withdrawal: only the hijacker's route is left
        wait_js(
            browser,
            "return [...document.querySelectorAll('#routes tr[data-neighbor]')]"
            ".map(r => r.dataset.neighbor).join() === '127.0.0.12'",
            what="the route table holding only the hijacker's route",
        )
        screenshot(browser, tmp_path, "origin-hijack")
        assert console_errors(browser) == []


def test_route_leak_page_shows_aspa_invalid_with_the_failed_hop(browser, tmp_path):
    with lab("route-leak-aspa") as p:
        browser.get(p.wait_url())
        wait_js(
            browser,
            'return document.querySelector(\'g.ann[data-aspa="invalid"][data-stopped="true"]\')'
            " !== null",
            what="an ASPA-invalid route drawn stopped at the router",
        )
        leak = browser.execute_script(
            "const g = document.querySelector('g.ann[data-aspa=\"invalid\"]');"
            "return [g.dataset.prefix, g.dataset.origin, g.dataset.state]"
        )
        assert leak == ["203.0.113.0/24", "64503", "valid"]  # ROV valid, ASPA invalid
        wait_js(
            browser,
            "return document.querySelector('#routes tr[data-aspa=\"invalid\"]') !== null",
            what="the leaked route in the table",
        )
        browser.execute_script(
            "document.querySelector('#routes tr[data-aspa=\"invalid\"]').click()"
        )
        detail = wait_js(
            browser,
            "const d = [...document.querySelectorAll('#detail div')].find("
            "x => x.innerText.startsWith('ASPA invalid')); return d && d.innerText",
            what="ASPA detail",
        )
        assert "failed hop" in detail and "AS64501" in detail
        screenshot(browser, tmp_path, "route-leak-aspa")
        assert console_errors(browser) == []


def test_presenter_controls_step_the_lab_and_the_server_is_read_only(browser, tmp_path):
    import json
    import urllib.error
    import urllib.request

    with lab("origin-hijack", "--step") as p:
        url = p.wait_url()
        browser.get(url)
        wait_js(browser, "return document.getElementById('btn-next').offsetParent !== null")
        time.sleep(3)  # paused: nothing happens without Next
        assert (
            browser.execute_script("return document.querySelectorAll('#steps li.current').length")
            == 0
        )
        browser.find_element("id", "btn-next").click()
        wait_js(
            browser,
            "const c = document.querySelector('#steps li.current');"
            "return c && c.dataset.step === '0'",
            what="step 1 current after Next",
        )
        state = json.loads(urllib.request.urlopen(url + "api/state", timeout=10).read())
        assert state["lab"]["current"] == 0 and state["presenter"] is True
        assert console_errors(browser) == []
    with lab("origin-hijack") as p:
        url = p.wait_url()
        req = urllib.request.Request(
            url + "api/lab/next", method="POST", headers={"X-Rov-Router": "presenter"}
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 404  # no controls without --step
        req = urllib.request.Request(url + "api/state", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 405


def test_run_with_web_serves_the_running_routers_view(tmp_path):
    """`rov-router run --web`: the page's state comes from the running router (its RPKI source
    synced over RTR from the embedded cache, its neighbor listed)."""
    import json
    import urllib.request

    from rov_router.procs import free_port

    vrps = tmp_path / "v.json"
    vrps.write_text(
        json.dumps({"roas": [{"prefix": "192.0.2.0/24", "maxLength": 24, "asn": "AS64496"}]})
    )
    cfg = tmp_path / "r.toml"
    cfg.write_text(
        f"""[router]
asn = 65000
router_id = "127.0.0.1"
listen = "127.0.0.1"
port = {free_port()}

[[neighbor]]
address = "127.0.0.2"
asn = 65001
role = "downstream"
passive = true

[[rpki]]
name = "file"
vrps = "{vrps}"
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "rov_router.cli", "run", "--config", str(cfg), "--plain",
         "--web", "--control", str(tmp_path / "c.sock"), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        url = None
        end = time.monotonic() + 60
        assert proc.stdout is not None
        while url is None and time.monotonic() < end:
            line = proc.stdout.readline()
            assert line, "rov-router run exited before printing the web view URL"
            m = re.search(r"web view: (http://127\.0\.0\.1:\d+/)", line)
            url = m.group(1) if m else None
        assert url, "no web view URL"
        doc: dict = {}
        while time.monotonic() < end:
            doc = json.loads(urllib.request.urlopen(url + "api/state", timeout=10).read())
            if doc["status"]["rpki"][0]["vrps"] == 1:
                break
            time.sleep(0.3)
        (src,) = doc["status"]["rpki"]
        assert (src["name"], src["vrps"], src["state"]) == ("file", 1, "established")
        assert [n["address"] for n in doc["status"]["neighbors"]] == ["127.0.0.2"]
        assert {n["relation"] for n in doc["nodes"]} == {"router", "cache", "downstream"}
        assert doc["lab"] is None and doc["presenter"] is False
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
