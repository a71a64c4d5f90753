"""Test helpers for PDFs: their text (pypdf), their attachments, and a PNG of a page
(pdftoppm, from poppler-utils) so that a person can look at what the tests rendered."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from pypdf import PdfReader

RENDERINGS = Path(tempfile.gettempdir()) / "licensing-test-renderings"


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def attachments(pdf: bytes) -> dict[str, bytes]:
    """The embedded files of a PDF by name (the first copy of each)."""
    return {name: contents[0] for name, contents in PdfReader(io.BytesIO(pdf)).attachments.items()}


def xmp_metadata(pdf: bytes) -> bytes:
    """The document's XMP metadata packet (decompressed)."""
    return PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()


def page_png(pdf: bytes, target: Path, *, page: int = 1, resolution: int = 80) -> Path:
    """Write page ``page`` of ``pdf`` as the PNG ``target`` with pdftoppm; returns its path."""
    if shutil.which("pdftoppm") is None:
        raise RuntimeError("pdftoppm is missing: apt-get install poppler-utils (scripts/test installs it as root)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "document.pdf"
        source.write_bytes(pdf)
        stem = Path(directory) / "page"
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(resolution), "-f", str(page), "-l", str(page), "-singlefile", str(source), str(stem)],
            check=True, capture_output=True,
        )
        shutil.copyfile(stem.with_suffix(".png"), target)
    return target
