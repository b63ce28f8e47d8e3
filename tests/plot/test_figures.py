"""The one figure-saving helper: PNG written atomically, figure closed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from augsens.plot.figures import png_bytes, save_figure  # noqa: E402


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk


def test_save_figure_closes_pyplot_figures_and_keeps_dpi(tmp_path) -> None:
    fig, _ = plt.subplots(figsize=(2, 1))
    path = save_figure(fig, tmp_path / "sub" / "a.png", dpi=50)
    assert fig.number not in plt.get_fignums()
    assert _png_size(path.read_bytes()) == (100, 50)  # 2 x 1 inches at 50 dpi
    assert _png_size(png_bytes(Figure(figsize=(2, 1)), dpi=30)) == (60, 30)


def test_failed_save_keeps_the_previous_file(tmp_path) -> None:
    path = save_figure(Figure(figsize=(1, 1)), tmp_path / "a.png", dpi=20)
    before = path.read_bytes()
    fig = Figure(figsize=(3, 3))

    def broken(fh, **kwargs):
        fh.write(b"\x89PNG partial")
        raise OSError("disk full")

    fig.savefig = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, path, dpi=20)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left behind
