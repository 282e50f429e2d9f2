"""The browser snippet in a real browser: headless Chromium (Debian's `chromium`, driven through
Debian's `chromium-driver`; `make tools` installs both) opens a page on loopback that loads
`/v1/leadstage.js` from the collector, identifies a lead, clicks "pricing" and "request a demo"
and navigates away; the real worker publishes the lead's move to warm."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.collector_harness import CollectorProcess
from tests.integration.worker_harness import by_lead, changes

COLLECT_PORT = 16472
WORKER_PORT = 16473

PAGE = """<!doctype html>
<html><head><title>Example Co</title>
<script src="http://127.0.0.1:{collect}/v1/leadstage.js"></script>
<script>
  leadstage.init({{endpoint: "http://127.0.0.1:{collect}", key: "{key}"}});
  window.refusedEmail = leadstage.identify("peter%40example.com");
  window.identified = leadstage.identify("{lead}");
</script></head>
<body>
  <a id="pricing" href="#" onclick="leadstage.track('PRICING_VIEWED'); return false">Pricing</a>
  <button id="demo" onclick="leadstage.track('CONTACTED'); leadstage.track('DEMO_REQUESTED');
                             window.location.href = '/bye';">Request a demo</button>
</body></html>"""


def _browser() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Debian's chromium and chromium-driver are missing: make tools"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture
def page_server() -> Iterator[tuple[int, dict[str, str]]]:
    """A site on loopback: `/` is the page (from `pages["/"]`), `/bye` where the demo goes."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], "<html><body>bye</body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], pages
    finally:
        server.shutdown()
        server.server_close()


def test_a_visit_in_chromium_turns_the_lead_warm(kafka_bootstrap, worker_factory, tmp_path,
                                                 page_server):
    worker = worker_factory(WORKER_PORT).start()
    worker.wait_ready()
    name = worker_factory.name
    collector = CollectorProcess(kafka_bootstrap, f"{name}-activity", COLLECT_PORT, tmp_path)
    page_port, pages = page_server
    origin = f"http://127.0.0.1:{page_port}"
    key = collector.add_key("site", "WEB", "browser", [origin])
    collector.start()
    lead = f"visitor-{uuid.uuid4().hex[:10]}"
    pages["/"] = PAGE.format(collect=COLLECT_PORT, key=key, lead=lead)
    browser = _browser()
    try:
        browser.get(origin + "/")
        assert browser.execute_script("return window.refusedEmail") is False
        assert browser.execute_script("return window.identified") is True
        from selenium.webdriver.common.by import By

        browser.find_element(By.ID, "pricing").click()
        browser.find_element(By.ID, "demo").click()
        deadline = time.monotonic() + 10
        while "/bye" not in browser.current_url and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "/bye" in browser.current_url
        assert browser.get_cookies() == []  # no cookie unless asked
    finally:
        browser.quit()
        collector.stop()
    published = by_lead(changes(kafka_bootstrap, f"{name}-changes", 1, timeout_s=60))
    assert lead in published, (published.keys(), collector.tail(), worker.tail())
    assert published[lead][-1]["stage"] == "warm"
    status, state = worker.get(f"/leads/{lead}")
    assert status == 200
    assert state["facts"]["contacts"] == "1" and state["facts"]["interest_signals"] == "2", state
