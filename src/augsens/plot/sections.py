"""Report sections as data: a title, an HTML fragment and the files it shows.

An analysis returns a :class:`Section`; the explorer page lists it in its navigation by ``title`` and
places ``html`` in the page.  A section made in one process and shown by ``augsens report`` in another is
saved beside the analysis's files as ``NAME.section.json`` (title, fragment, files), with the fragment
alone in ``NAME.section.html`` for reading on its own; :func:`find_sections` reads the records back, so
no title is ever recovered from HTML.  A ``*.section.html`` fragment with no record beside it (one written
by hand or by another tool) is still shown: its first ``<h2>`` heading, read with the standard library's
HTML parser, names it in the navigation.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["Section", "find_sections", "inline_images", "SECTION_FORMAT"]

#: Version of the ``*.section.json`` record.
SECTION_FORMAT = 1


def inline_images(fragment: str, folder: Path) -> str:
    """Replace ``src="file.png"`` paths relative to ``folder`` with embedded data, so a fragment written
    beside its PNG files still shows them once copied into a page elsewhere."""

    def embed(match: re.Match[str]) -> str:
        path = folder / html.unescape(match.group(2))
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'{match.group(1)}"data:image/png;base64,{data}"'

    return re.sub(r'(src=)"(?!data:|https?:)([^"]+\.png)"', embed, fragment)


@dataclass(frozen=True)
class Section:
    """One section of a report page.

    Attributes
    ----------
    title : str
        Its heading and its entry in the page's navigation.
    html : str
        The fragment placed in the page, its heading included; images are embedded (``data:`` URIs) or
        relative to the folder the section is saved in.
    name : str
        File stem of the saved section (``correlation`` → ``correlation.section.json``).
    files : tuple of Path
        The figures and tables the analysis wrote (the PNG ones are shown in ``html``).
    """

    title: str
    html: str
    name: str = "section"
    files: tuple[Path, ...] = ()

    @classmethod
    def from_files(cls, name: str, title: str, files: Sequence[Path], intro: str = "") -> Section:
        """A section embedding the PNG ``files`` and naming the others (CSV tables), under ``title``."""
        parts = [f"<h2>{html.escape(title)}</h2>"]
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        tables = [f for f in files if f.suffix != ".png"]
        if tables:
            parts.append("<p>Tables: " + ", ".join(html.escape(str(f)) for f in tables) + "</p>")
        for f in files:
            if f.suffix == ".png":
                data = base64.b64encode(Path(f).read_bytes()).decode()
                parts.append(f'<img alt="{html.escape(f.name)}" src="data:image/png;base64,{data}">')
        return cls(title, "\n".join(parts), name, tuple(Path(f) for f in files))

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/NAME.section.json`` (the record :func:`find_sections` reads) and the fragment
        alone as ``folder/NAME.section.html``; returns the record's path."""
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{self.name}.section.html").write_text(self.html)
        record = {
            "format": SECTION_FORMAT,
            "name": self.name,
            "title": self.title,
            "html": self.html,
            "files": [_relative(f, d) for f in self.files],
        }
        path = d / f"{self.name}.section.json"
        path.write_text(json.dumps(record, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Section:
        """A section saved by :meth:`save` (``NAME.section.json``), its relative images embedded."""
        p = Path(path)
        record = json.loads(p.read_text())
        return cls(
            title=str(record["title"]),
            html=inline_images(str(record["html"]), p.parent),
            name=str(record.get("name", p.name.removesuffix(".section.json"))),
            files=tuple(p.parent / f for f in record.get("files", [])),
        )

    @classmethod
    def from_fragment(cls, path: str | Path) -> Section:
        """A ``*.section.html`` fragment with no record beside it, named by its first ``<h2>``."""
        p = Path(path)
        text = p.read_text()
        heading = _FirstHeading()
        heading.feed(text)
        name = p.name.removesuffix(".section.html")
        return cls(heading.text.strip() or name, inline_images(text, p.parent), name)


def find_sections(folders: Iterable[str | Path], *, recursive: Iterable[bool] | None = None) -> list[Section]:
    """Every saved section under ``folders`` (sub-folders included), in path order.

    A record (``NAME.section.json``) stands for its fragment beside it; a fragment alone is read with
    :meth:`Section.from_fragment`.  ``recursive`` (one flag per folder, default all ``True``) limits a
    folder to its own files.
    """
    roots = [Path(f) for f in folders]
    flags = list(recursive) if recursive is not None else [True] * len(roots)
    found: set[Path] = set()
    for root, deep in zip(roots, flags, strict=True):
        pattern = root.rglob if deep else root.glob
        found |= {p for suffix in ("json", "html") for p in pattern(f"*.section.{suffix}")}
    sections = []
    for p in sorted(found):
        if p.name.endswith(".section.json"):
            sections.append(Section.load(p))
        elif p.with_name(p.name.removesuffix(".html") + ".json") not in found:
            sections.append(Section.from_fragment(p))
    return sections


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


class _FirstHeading(HTMLParser):
    """The text of the first ``<h2>`` of a fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self._inside, self._done = "", False, False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2" and not self._done:
            self._inside = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._inside:
            self._inside, self._done = False, True

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.text += data
