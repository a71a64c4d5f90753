"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: their scripts, styles and favicon
are served by the application itself, and neither page loads anything from another host."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from licensing.migrate import upgrade
from tests.support.browser import ROOT, chromium, served

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


@pytest.fixture
def server(tmp_path):
    """``uvicorn`` serving ``create_app()`` on a free local port, on a throwaway SQLite database."""
    database = tmp_path / "licensing.db"
    upgrade(f"sqlite:///{database}")
    with served(f"sqlite:///{database}", tmp_path) as base:
        yield base


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


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
