"""The documentation stays navigable: links resolve, the Quickstart stays two commands, the README short.

No network and no environment: only the Markdown files of the repository are read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ARCHITECTURE, *DOCS]

README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
# [text](target) and ![alt](target); text may hold one level of brackets, as in [`[a]`](b).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # http:, https:, mailto:, …


def relative_links(text: str) -> list[str]:
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = [match.group(1) for match in LINK.finditer(prose)]
    return [target for target in targets if target and not EXTERNAL.match(target)]


def section(text: str, heading: str) -> str:
    match = re.search(rf"^{re.escape(heading)}[ \t]*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no {heading!r} section"
    return match.group(1)


def test_the_docs_pages_are_found():
    assert DOCS, "docs/ holds no Markdown page"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page: Path):
    assert page.is_file(), f"{page.relative_to(ROOT)} does not exist"
    missing = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        if not path:  # an anchor in the same page
            continue
        if not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_link_finder_sees_links_and_skips_code_and_external_ones():
    text = (
        "See [Options](docs/options.md#run), ![plan](plan.svg), [`x`](a/b.md) and "
        "[site](https://example.com), [mail](mailto:a@b.c), [here](#anchor).\n"
        "```\n[not a link](in/a/fence.md)\n```\n"
        "`[not a link](inline/code.md)`\n"
    )
    assert relative_links(text) == ["docs/options.md#run", "plan.svg", "a/b.md", "#anchor"]


def test_the_quickstart_is_one_block_of_exactly_two_commands():
    quickstart = section(README.read_text(encoding="utf-8"), "## Quickstart")
    blocks = FENCE.findall(quickstart)
    assert len(blocks) == 1, f"the Quickstart holds {len(blocks)} fenced code blocks, not one"
    block = FENCE.search(quickstart).group(0).splitlines()[1:-1]
    commands = [line for line in block if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, f"the Quickstart's block holds {len(commands)} commands, not two: {commands}"


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines, {README_MAX_LINES} or more"
