"""The repository stands on its own: every document a file names is in the repository.

A reader who meets ``docs/paper.md §5`` in a docstring, or a Markdown link in the README, can open it.
Documents are the names ending in ``.md``, ``.rst``, ``.ipynb``, ``.pdf`` or ``.txt``; a name is found when
it is a path from the repository root, from the naming file's folder, or the name of a file the repository
holds.  Text files that tests write themselves, and files a user supplies, are listed with their reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w.-]+\.(?:md|rst|ipynb|pdf|txt))\b")

# Names that are not documents of the repository, each with why it appears.
NOT_DOCUMENTS = {
    "categories_places365.txt": "CSAIL's Places365 class list, a file the user supplies beside the weights",
    "plain.txt": "written by tests/models/test_models_registry.py",
    "gap.txt": "written by tests/models/test_models_registry.py",
    "notes.txt": "written by tests/cli_battery.py (a non-image file in an image folder)",
}

TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".toml",
    ".txt",
    ".yml",
    ".yaml",
    ".cfg",
    ".ini",
    ".json",
    ".js",
    ".css",
    ".html",
}
TEXT_NAMES = {"Makefile", "LICENSE", "run"}


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        return [ROOT / p for p in out if (ROOT / p).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        return [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]


FILES = _tracked()


def _found(name: str, source: Path, basenames: set[str]) -> bool:
    return (ROOT / name).is_file() or (source.parent / name).is_file() or Path(name).name in basenames


def test_every_named_document_is_in_the_repository():
    basenames = {p.name for p in FILES}
    missing = []
    for path in FILES:
        if path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES:
            continue
        if path == Path(__file__).resolve():
            continue  # this file names the documents it looks for
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for name in DOCUMENT.findall(line):
                if name not in NOT_DOCUMENTS and not _found(name, path, basenames):
                    missing.append(f"{path.relative_to(ROOT)}:{lineno}: {name}")
    assert not missing, "documents named but not in the repository:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", ["authors-code-spec.md", "paper-notes.md"])
def test_the_check_finds_a_missing_document(tmp_path, name):
    source = tmp_path / "module.py"
    source.write_text(f'"""The authors\' rule (``{name}`` 2.4)."""\n')
    (found,) = DOCUMENT.findall(source.read_text())
    assert found == name
    assert not _found(found, source, {p.name for p in FILES})


def test_paper_sections_named_in_the_code_exist():
    """Every ``docs/paper.md §N`` that a file cites is a section of that page."""
    sections = set(re.findall(r"^## (\d+)\.", (ROOT / "docs" / "paper.md").read_text(), flags=re.M))
    items = len(re.findall(r"^\d+\. \*\*", (ROOT / "docs" / "paper.md").read_text(), flags=re.M))
    bad = []
    for path in FILES:
        if path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for major, minor in re.findall(r"docs/paper\.md`{0,2}\s+§(\d+)(?:\.(\d+))?", text):
            if major not in sections or (minor and major == "13" and int(minor) > items):
                bad.append(f"{path.relative_to(ROOT)}: §{major}{'.' + minor if minor else ''}")
    assert not bad, bad
