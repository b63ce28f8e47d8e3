"""The self-contained HTML report of one or more results folders.

The report is the explorer page of :mod:`augsens.plot.explorer`: one HTML file with its data and viewer
inside, so ``report.html`` opens from disk and can be mailed or archived on its own.  The analyses
(:mod:`augsens.analysis.protocol`: masking, correlation, LDA, segments...) add sections by saving a
:class:`~augsens.plot.sections.Section` into their output folder (:func:`write_section`);
:func:`write_report` includes every section saved under the folders it is given or beside its page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from augsens.errors import MissingFileError, UserInputError
from augsens.plot.explorer import write_explorer
from augsens.plot.sections import Section, find_sections
from augsens.schema import find_results, open_tree, results_folder, unfinished_run
from augsens.wording import option

__all__ = ["write_report", "write_section"]


def write_section(out_dir: str | Path, name: str, title: str, files: Sequence[Path], intro: str = "") -> Path:
    """Save a report section embedding the PNG ``files`` and naming the others (CSV tables) in ``out_dir``
    (see :meth:`Section.save`); :func:`write_report` includes every section saved under its folders."""
    return Section.from_files(name, title, files, intro).save(out_dir)


def write_report(results: str | Path | Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the explorer page (:func:`augsens.plot.explorer.write_explorer`) for results folders.

    Every section saved under the given folders or beside ``out``
    (:func:`augsens.plot.sections.find_sections`) becomes a section of the page, its relative PNG images
    embedded.

    Parameters
    ----------
    results : path or sequence of paths
        Results folders (``results.zarr`` inside) and/or folders whose sub-folders are results folders.
    out : path, optional
        The HTML file; default ``report.html`` in the folder given (required for several folders).

    Raises
    ------
    FileNotFoundError
        No results found under one of ``results``.
    ValueError
        Several folders and no ``out``.
    """
    roots = [Path(results)] if isinstance(results, str | Path) else [Path(r) for r in results]
    if not roots:
        raise UserInputError("no results folders given: pass at least one folder holding results.zarr")
    found: list[Path] = []
    for root in roots:
        here = find_results(root)
        if not here:
            raise MissingFileError(
                f"no augsens results under {str(root)!r} (expected results.zarr in it or its sub-folders)."
                f"{unfinished_run(root)}"
            )
        found += [d for d in here if d not in found]
    if out is None:
        if len(roots) > 1:
            raise UserInputError(
                f"{len(roots)} results folders given: name the page with {option('out', 'FILE')}, e.g. "
                "report.html"
            )
        out = results_folder(roots[0]) / "report.html"
    out = Path(out)
    if out.is_dir():
        raise UserInputError(f"{option('out', '')} {str(out)!r} is a folder: name the HTML file to write")
    _check_writable(out)  # at once, not after every map was read
    sections = find_sections([*roots, out.parent], recursive=[*(True for _ in roots), False])
    from augsens.plot.augmentation_table import augmentation_table_html

    tables = []
    for folder in found:  # the ranges each study drew its parameters from
        table = augmentation_table_html(open_tree(folder), title=folder.name)
        if table:
            tables.append(table)
    if tables:
        heading = "<h2>Augmentations and ranges</h2>"
        sections.append(Section("Augmentations and ranges", heading + "".join(tables), "ranges"))
    intro = (
        "<p>Each activation (channel × position of each checkpoint) of the network varies as augmentations "
        "are applied together with random parameters and order; its variance is split into shares owed to "
        "each factor. The summary is written from the aggregated indices; the viewer below shows every map. "
        "Definitions are in the glossary.</p>"
    )
    try:
        return write_explorer(found, out, sections=sections, intro=intro)
    except OSError as exc:  # a disk filled while writing
        if exc.filename is None or Path(exc.filename) != out:
            raise
        out.unlink(missing_ok=True)
        raise _unwritable(out, exc) from exc


def _unwritable(out: Path, exc: OSError) -> UserInputError:
    return UserInputError(
        f"cannot write the report to {str(out)!r} ({exc.strerror or exc}), so no report was written. Pass "
        f"{option('out', 'FILE')} naming an HTML file in a folder you can write to"
    )


def _check_writable(out: Path) -> None:
    """Refuse a report path whose folder cannot be created or written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise _unwritable(out, exc) from exc
