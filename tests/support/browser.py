"""A live server and Debian's Chromium driven by Playwright, for the tests that use a real browser.

* ``served(url, log_dir, **settings)``: ``uvicorn`` serving ``create_app()`` on a free local
  port against the database at ``url`` (migrated), in its own process, stopped on leaving.
* ``chromium()``: headless ``/usr/bin/chromium`` (Playwright's ``executable_path``), or a skip
  that says why it cannot run here (never a failure).
* ``axe_problems(page)``: what axe-core (the npm package, ``LICENSING_TEST_AXE``, installed by
  scripts/test) finds of impact serious or critical on the page.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = os.environ.get("LICENSING_TEST_AXE", "")
AXE_SKIP = os.environ.get("LICENSING_TEST_AXE_SKIP", "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(url: str, log_dir: Path, **settings: str) -> Iterator[str]:
    """The application on ``http://127.0.0.1:<port>`` over the database at ``url``; yields the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LICENSING_")}
    environment |= {"LICENSING_DATABASE_URL": url, "LICENSING_MAIL_ON_APPROVAL": "false", "LICENSING_PUBLIC_URL": base}
    environment |= {f"LICENSING_{name.upper()}": value for name, value in settings.items()}
    log_path = log_dir / f"uvicorn-{port}.log"
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


@contextmanager
def chromium():
    """Headless Debian Chromium driven by Playwright; skipped (never failed) where it cannot run."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test installs it as root)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            )
        except Error as error:
            pytest.skip(f"Chromium ({CHROMIUM}) could not be launched: {error}")
        try:
            yield browser
        finally:
            browser.close()


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(violation => violation.impact === "serious" || violation.impact === "critical")
    .map(violation => {
      const where = violation.nodes.slice(0, 3).map(node => node.target.join(" ")).join(", ");
      return `${violation.impact} ${violation.id}: ${violation.help} at ${where}`;
    });
}"""


def axe_problems(page) -> list[str]:
    """The serious and critical violations axe-core finds on the page as it is now (the page's
    context must bypass its Content-Security-Policy, which refuses injected scripts)."""
    if not AXE:
        pytest.skip(AXE_SKIP or "axe-core is not installed: run scripts/test, which installs it with npm (LICENSING_TEST_AXE)")
    page.add_script_tag(path=AXE)
    return page.evaluate(AXE_RUN)
