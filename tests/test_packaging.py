"""Packaging (issue 12): a plain, non-editable install has everything an invoice needs.

The wheel is built from a copy of the working tree (so that the build leaves no ``build/`` or
``*.egg-info`` behind in the repository, and a stale ``build/lib`` cannot leak into it), installed
into a new virtual environment with its dependencies from the package index, and run from a
folder outside the repository: migrate a new SQLite database, bill and approve an invoice
through the service layer, render its PDF and its mail. Runs once, not per database.

There is no pytest-timeout here: every step is a subprocess with its own generous timeout, and a
step that fails or times out (the index unreachable, say) fails the test with its output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pdf_pages import attachments, page_texts

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache",
    "outbox", "*.db", "*.db-wal", "*.db-shm",
)

# Runs with the new environment's Python, from a folder outside the repository.
SCRIPT = '''
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlmodel import select

import licensing
from licensing.accounts.services import create_account
from licensing.catalog.services import create_product
from licensing.db import Database
from licensing.documents.pdf import render_mail, templates_dir
from licensing.documents.service import load_document, pdf_of
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice
from licensing.licences.services import add_service, create_licence
from licensing.migrate import upgrade

AT = datetime(2027, 1, 16, 9, 0, tzinfo=UTC)
url = "sqlite:///" + str(Path("packaged.db").resolve())
upgrade(url)
database = Database(url)
with database.write() as session:
    account = create_account(
        session, name="Packaged Ltd", email="billing@packaged.test", currency="EUR",
        address="12 Harbour Road\\n75011 Paris", country="FR", tax_id="FR12345678901", at=AT,
    )
    desk = create_product(session, kind="service", name="Dedicated desk", price=Decimal("310.00"), currency="EUR", tax_rate=Decimal(20), at=AT)
    licence = create_licence(session, account_id=account.id, start_date=date(2027, 1, 16), at=AT)
    add_service(session, licence.id, product_id=desk.id, schedule="monthly", quantity=Decimal(1), at=AT)
run_billing(database, as_of=date(2027, 1, 16), now=AT, actor="operator", approve_all=True)
with database.read() as session:
    invoice = session.exec(select(Invoice)).one()
    number, invoice_id = invoice.number, invoice.id
document = load_document(database, "invoice", invoice_id)
Path("invoice.pdf").write_bytes(pdf_of(document))
mail_text, mail_html = render_mail(document)
database.dispose()
print(json.dumps({
    "licensing": licensing.__file__, "templates": str(templates_dir()), "number": number,
    "mail_text": mail_text, "mail_html": mail_html,
}))
'''


def _run(args: list[str | Path], *, timeout: float, cwd: Path, env: dict[str, str]) -> str:
    """Run a step; fail the test with its output when it fails or takes too long."""
    command = " ".join(map(str, args))
    try:
        done = subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{command} took more than {timeout:.0f} s\nstdout:\n{error.stdout}\nstderr:\n{error.stderr}")
    if done.returncode != 0:
        pytest.fail(f"{command} exited with {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.stdout


def _clean_environment() -> dict[str, str]:
    """This process's environment without the settings, the virtual environment or a Python path
    that could make the new environment read the repository or the test settings."""
    return {
        name: value for name, value in os.environ.items()
        if not name.startswith(("LICENSING_", "PYTHON", "PIP_")) and name not in ("VIRTUAL_ENV", "CONDA_PREFIX")
    }


def _uv() -> Path | None:
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else None


def test_a_wheel_installed_in_a_new_virtual_environment_renders_an_invoice_pdf(tmp_path):
    env = _clean_environment()
    source, dist, venv, work = tmp_path / "source", tmp_path / "dist", tmp_path / "venv", tmp_path / "run"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    work.mkdir()
    python = venv / "bin" / "python"
    uv = _uv()
    if uv:
        # An sdist, then the wheel built from it: both must carry the templates.
        _run([uv, "build", "--python", sys.executable, "--out-dir", dist, source], timeout=600, cwd=tmp_path, env=env)
        _run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=120, cwd=tmp_path, env=env)
        [wheel] = dist.glob("licensing-*.whl")
        _run([uv, "pip", "install", "--python", python, wheel], timeout=900, cwd=tmp_path, env=env)
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, source], timeout=600, cwd=tmp_path, env=env)
        _run([sys.executable, "-m", "venv", venv], timeout=120, cwd=tmp_path, env=env)
        [wheel] = dist.glob("licensing-*.whl")
        _run([python, "-m", "pip", "install", wheel], timeout=1800, cwd=tmp_path, env=env)

    script = tmp_path / "render_invoice.py"
    script.write_text(SCRIPT)
    output = _run([python, "-I", script], timeout=300, cwd=work, env=env)
    result = json.loads(output.strip().splitlines()[-1])

    # The installed package, not the repository, and its own templates.
    installed, templates = Path(result["licensing"]).resolve(), Path(result["templates"]).resolve()
    assert installed.is_relative_to(venv.resolve()), installed
    assert not installed.is_relative_to(ROOT), installed
    assert templates == installed.parent / "templates", templates
    assert (templates / "assets" / "document.css").is_file()

    number = result["number"]
    assert number.startswith("INV-")
    pdf = (work / "invoice.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page_texts(pdf))
    assert f"Invoice {number}" in text
    assert "Packaged Ltd" in text and "Total due 192.00 EUR" in text
    assert "BILLED TO" in text  # "Billed to" upper-cased by assets/document.css: the stylesheet was read
    assert "factur-x.xml" in attachments(pdf)
    assert number in result["mail_text"] and number in result["mail_html"]


def test_the_templates_come_from_the_package_unless_licensing_templates_dir_names_others(tmp_path, set_operator_setting):
    from importlib.resources import files

    from licensing.documents.pdf import templates_dir

    packaged = templates_dir()
    assert packaged == files("licensing") / "templates"
    assert (packaged / "document.html").is_file() and (packaged / "mail" / "document.txt").is_file()

    shutil.copytree(packaged, tmp_path / "brand")
    set_operator_setting("templates_dir", str(tmp_path / "brand"))
    assert templates_dir() == tmp_path / "brand"
