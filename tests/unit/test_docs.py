"""The README is a one-screen front door; reference material lives in docs/, with no stale text."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.support.env import REPO

DOCS = REPO / "docs"
PAGES = ["rtr-client.md", "cache.md", "router.md", "lab.md", "operations.md"]


def _all_docs():
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def test_readme_fits_on_one_screen_with_the_two_quick_start_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 60
    assert "pip install -e . && rov-router demo" in text
    assert "bash tests/run.sh" in text
    assert (REPO / "tests" / "run.sh").exists()


@pytest.mark.parametrize("page", PAGES)
def test_one_docs_page_per_area_linked_from_the_readme(page):
    assert (DOCS / page).exists()
    assert f"(docs/{page})" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("path", _all_docs(), ids=lambda p: p.name)
def test_no_stale_text_and_no_dead_relative_links(path):
    text = path.read_text()
    for stale in ("next issue", "to come", "../shared", "issue1"):
        assert stale not in text, f"{path.name}: {stale!r}"
    for link in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (path.parent / link).exists(), f"{path.name}: dead link {link}"


def test_the_libraries_and_why_are_documented():
    text = (DOCS / "development.md").read_text()
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = re.split(r"[<>=!~ ]", dep)[0]
        assert f"**{name}**" in text, name


def test_package_description_covers_more_than_the_rtr_client():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "router" in meta["description"] and "ExaBGP" in meta["description"]


def test_the_readme_shows_the_web_view_screenshot():
    """One picture of the web view (the origin-hijack lab, captured by the browser test)."""
    lines = [x for x in (REPO / "README.md").read_text().splitlines() if "(docs/web.png)" in x]
    assert len(lines) == 1 and lines[0].startswith("![")
    assert (DOCS / "web.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
