"""Saving figures: every PNG augsens writes to disk or embeds in a page goes through here.

:func:`save_figure` writes a PNG file atomically (a temporary sibling renamed into place, so a stopped run
never leaves a truncated image under the final name) and :func:`png_bytes` renders one for embedding.
Both close the figure: pyplot keeps every figure it made alive until closed, and a report draws
hundreds.  Figures built directly as ``matplotlib.figure.Figure`` are freed by the garbage collector, so
closing them is a no-op, and pyplot is never imported here.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["save_figure", "png_bytes", "figure_html"]


def _close(fig: Figure) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a figure made by pyplot is registered there until closed
        pyplot.close(fig)


def png_bytes(fig: Figure, *, dpi: int) -> bytes:
    """The figure as PNG bytes (e.g. for a base64 ``<img>``); the figure is closed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    bytes
        A PNG file.

    Examples
    --------
    >>> png_bytes(Figure(figsize=(1, 1)), dpi=10)[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        _close(fig)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, *, dpi: int) -> Path:
    """Write the figure as a PNG file, atomically, and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        The file to write (PNG whatever its suffix); parent folders are created.
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> out = save_figure(Figure(figsize=(1, 1)), Path(tempfile.mkdtemp()) / "a" / "fig.png", dpi=10)
    >>> out.read_bytes()[:4], sorted(p.name for p in out.parent.iterdir())
    (b'\\x89PNG', ['fig.png'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a plain open (not mkstemp) so the file gets the usual permissions; the pid keeps writers apart
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _close(fig)
    return path


def figure_html(fig: Figure, alt: str) -> str:
    """Embed a figure in a page as a base64 PNG ``<img>`` (and close it)."""
    data = base64.b64encode(png_bytes(fig, dpi=110)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
