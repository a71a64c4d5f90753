"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: their scripts, styles and favicon
are served by the application itself, and neither page loads anything from another host."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from licensing.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Read at import: the autouse ``operator_settings`` fixture removes every LICENSING_* variable.
SCREENSHOTS = os.environ.get("LICENSING_SCREENSHOTS") == "1"

LINKED = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/", ".ico": "image/"}


def test_the_api_docs_load_nothing_from_the_internet(client):
    anonymous = client.as_role(None)
    for page in ("/docs", "/redoc"):
        response = anonymous.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html"), page
        assert "://" not in response.text, f"{page} names an absolute URL:\n{response.text}"
        if page == "/redoc":  # its bundle's Redocly logo: see the browser test
            assert "img-src 'self'" in response.headers["content-security-policy"]
        assets = LINKED.findall(response.text)
        assert any(asset.endswith(".js") for asset in assets), f"{page} loads no script:\n{response.text}"
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), f"{page} loads {asset!r} from elsewhere"
            served = anonymous.get(asset)
            assert served.status_code == 200, f"{page}: {asset} answered {served.status_code}"
            expected = CONTENT_TYPES[Path(urlsplit(asset).path).suffix]
            assert expected in served.headers["content-type"], f"{page}: {asset} is {served.headers['content-type']}"


# -- in a real browser, with every other host out of reach ------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``uvicorn`` serving ``create_app()`` on a free local port, on a throwaway SQLite database."""
    database = tmp_path / "licensing.db"
    upgrade(f"sqlite:///{database}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LICENSING_")}
    environment |= {"LICENSING_DATABASE_URL": f"sqlite:///{database}", "LICENSING_MAIL_ON_APPROVAL": "false"}
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "licensing.api.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright; skipped (never failed) where it cannot run."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test installs it as root)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Error as error:
            pytest.skip(f"Chromium ({CHROMIUM}) could not be launched: {error}")
        try:
            yield chromium
        finally:
            chromium.close()


def open_offline(browser, url: str):
    """Opens ``url`` in a page that may reach 127.0.0.1 only. Returns the page and the lists of
    requests to elsewhere (aborted), local requests that failed, script errors, and loads that the
    page's Content-Security-Policy refused (the browser never sent them)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    elsewhere, failed, script_errors, refused = [], [], [], []

    def only_local(route):
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))

    def on_failure(request):
        if request.failure == "csp":
            refused.append(request.url)
        elif request.url not in elsewhere:
            failed.append(f"{request.failure} {request.url}")

    page.on("requestfailed", on_failure)
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(url, wait_until="networkidle")
    return page, elsewhere, failed, script_errors, refused


def keep(page, tmp_path: Path, name: str, *, full_page: bool) -> None:
    shot = tmp_path / name
    page.screenshot(path=shot, full_page=full_page)
    assert shot.stat().st_size > 10_000, f"{name} looks empty"
    if SCREENSHOTS:
        shutil.copy(shot, ROOT / "docs" / name)


def test_the_api_docs_render_in_a_browser_without_network(server, browser, tmp_path):
    page, elsewhere, failed, script_errors, refused = open_offline(browser, f"{server}/docs")
    page.wait_for_selector(".opblock-post", timeout=30_000)
    accounts = page.locator('.opblock-summary-path[data-path="/api/v1/accounts"]').first
    accounts.wait_for(state="visible", timeout=30_000)
    assert page.locator(".opblock").count() > 10
    page.wait_for_load_state("networkidle")
    keep(page, tmp_path, "api-docs.png", full_page=True)
    assert elsewhere == [], f"/docs tried to load from the internet: {elsewhere}"
    assert failed == [], f"/docs could not load: {failed}"
    assert script_errors == [], script_errors
    assert refused == [], refused

    page, elsewhere, failed, script_errors, refused = open_offline(browser, f"{server}/redoc")
    page.get_by_text("/api/v1/accounts").first.wait_for(state="attached", timeout=30_000)
    page.wait_for_load_state("networkidle")
    keep(page, tmp_path, "api-redoc.png", full_page=False)
    assert elsewhere == [], f"/redoc tried to load from the internet: {elsewhere}"
    assert failed == [], f"/redoc could not load: {failed}"
    assert script_errors == [], script_errors
    # The only load that the page's Content-Security-Policy keeps in the browser: ReDoc's own
    # "API docs by Redocly" logo, which its bundle always takes from a CDN.
    assert set(refused) <= {REDOCLY_LOGO}, refused
