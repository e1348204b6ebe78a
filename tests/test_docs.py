"""The README and docs/ link to files and sections that exist (GitHub's heading anchors)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REPO_ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.S)  # a "# comment" in a code block is no heading
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def broken_links(markdown: Path) -> list[str]:
    broken = []
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (markdown.parent / path).resolve() if path else markdown
        if not file.exists():
            broken.append(f"{target} (no file {file.relative_to(REPO_ROOT) if file.is_relative_to(REPO_ROOT) else file})")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading with that anchor)")
    return broken


def test_the_anchor_of_a_heading_with_code_and_punctuation() -> None:
    assert github_anchor(" DeepDream: `gan-translate dream`") == "deepdream-gan-translate-dream"
    assert github_anchor("AdaIN: arbitrary style transfer (one pass)") == "adain-arbitrary-style-transfer-one-pass"


def test_a_link_to_a_missing_section_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Real heading\n\n[ok](#real-heading) [bad](#gone) [file](missing.md)\n")
    assert broken_links(page) == ["#gone (no heading with that anchor)", f"missing.md (no file {tmp_path / 'missing.md'})"]


def test_readme_and_docs_links_resolve() -> None:
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    broken = {str(page.relative_to(REPO_ROOT)): links for page in pages if (links := broken_links(page))}
    assert not broken, broken
