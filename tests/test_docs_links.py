"""Every relative link in README.md and docs/*.md leads somewhere: to a file or folder of the checkout, and where it
names a heading (`file.md#heading`, `#heading`), to a heading that file has, as GitHub makes its anchors. Moving a
doc or renaming a section without its links fails here."""
import re
import urllib.parse

import pytest

from textgen.paths import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = re.compile(r"^(```|~~~).*?^\1", flags=re.MULTILINE | re.DOTALL)  # fenced blocks: their brackets are code
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target "title"), images too
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", flags=re.MULTILINE)


def prose(text: str) -> str:
    return INLINE_CODE.sub("", CODE.sub("", text))


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: the heading's text (links as their words, no markup) in lower case, every character
    but letters, digits, spaces, hyphens and underscores dropped, spaces made hyphens; a repeat gets -1, -2, ..."""
    made, seen = set(), {}
    for heading in HEADING.findall(CODE.sub("", text)):
        words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", words.lower()).replace(" ", "-")
        made.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return made


def relative_links(doc) -> list[str]:
    return [target for target in LINK.findall(prose(doc.read_text()))
            if not urllib.parse.urlsplit(target).scheme and not target.startswith("//")]


def test_the_docs_have_relative_links_to_check():
    assert len(DOCS) > 2 and sum(map(len, map(relative_links, DOCS))) > 10


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(doc):
    broken = []
    for target in relative_links(doc):
        path, _, fragment = urllib.parse.unquote(target).partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if ROOT not in (linked, *linked.parents):
            broken.append(f"{target}: outside the checkout")
        elif not linked.exists():
            broken.append(f"{target}: no {linked.relative_to(ROOT)}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked.read_text()):
            broken.append(f"{target}: {linked.relative_to(ROOT)} has no heading #{fragment}")
    assert not broken, broken


def test_anchors_are_made_as_github_makes_them():
    text = "# The base model\n## Open loop (`make bench-anchor`), 80%\n## [Usage](usage.md)\n## Usage\n```\n# no\n```\n"
    assert anchors(text) == {"the-base-model", "open-loop-make-bench-anchor-80", "usage", "usage-1"}
