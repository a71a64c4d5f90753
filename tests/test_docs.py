"""The README and the documentation stand alone: every link points at a file of the repository
(a cloner has nothing else), and nothing is loaded from the internet."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")
AUTOLINK = re.compile(r"<(https?://[^>]+)>")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_and_docs_link_only_to_files_of_the_repository():
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if re.match(r"^[a-z]+:", target) or not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
        broken += [f"{page.relative_to(ROOT)}: <{url}>" for url in AUTOLINK.findall(text) if not url.startswith(("http://127.0.0.1", "http://localhost"))]
    assert broken == []


def test_the_project_has_a_licence_matching_its_metadata():
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
