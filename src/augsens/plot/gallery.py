"""A gallery of the augmentations on one photo (the paper's Figure 2).

One row per augmentation, showing a few parameter values spread over its range (or quantiles of its
distribution), then rows of simultaneous combinations: set 1 all on and set 2 all on (or a study's own
augmentations), each sample with random parameters and a random order.  Used by ``augsens gallery IMAGE
--out FILE.png`` (``--config STUDY.toml``: that study's augmentations and ranges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..augment import AUGMENTATIONS, SET1, SET2, Augmentation, apply, compose
from ..data.cache import DECODE_ERRORS, pil_to_rgb8
from ..errors import MissingFileError, UserInputError
from .figures import save_figure

__all__ = ["gallery", "gallery_values"]

#: Fractions of each parameter's [low, high] shown per augmentation (one column each).
_FRACTIONS = (0.0, 0.33, 0.67, 1.0)
#: Random combinations shown per set.
_COMBINATIONS = 4


def _load(image: str | Path | np.ndarray) -> torch.Tensor:
    """Photo -> float [1, 3, 224, 224] in [0, 1] via Resize(256) + CenterCrop(224)."""
    import torchvision.transforms.v2.functional as F

    if isinstance(image, np.ndarray):
        arr = image
    else:
        from PIL import Image

        path = Path(image)
        if path.is_dir():
            raise MissingFileError(f"{str(path)!r} is a folder: pass one image file (any format PIL reads)")
        if not path.is_file():
            raise MissingFileError(f"image file not found: {str(path)!r} (no such file)")
        try:
            with Image.open(path) as im:
                arr = np.asarray(pil_to_rgb8(im))
        except DECODE_ERRORS as exc:
            raise UserInputError(
                f"{str(path)!r} is not an image PIL can read ({type(exc).__name__}: {exc}): pass a JPEG, PNG "
                "or other image file, or re-save this one"
            ) from exc
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"image array must be [H, W], [H, W, 3] or [H, W, 4], got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise UserInputError("the image array holds NaN or inf: give finite values in [0, 1]")
        arr = np.clip(arr * 255.0, 0, 255).round()
    elif arr.dtype == np.uint16:  # 16-bit samples: [0, 65535] onto [0, 255]
        arr = np.rint(arr / 257.0)
    t = torch.from_numpy(np.ascontiguousarray(arr[..., :3]).astype(np.uint8)).permute(2, 0, 1)
    t = F.center_crop(F.resize(t, 256), 224)
    return (t.float() / 255.0).unsqueeze(0)


def _label(name: str, params: dict[str, float]) -> str:
    if not params:
        return name
    # Two values per line keeps the titles within one panel's width.
    items = [f"{k}={v:.3g}" for k, v in params.items()]
    return "\n".join(", ".join(items[i : i + 2]) for i in range(0, len(items), 2))


def _specs(
    augmentations: str | Sequence[str | Augmentation] | None, ranges: Mapping[str, Any] | None
) -> tuple[Augmentation, ...]:
    from ..augment.ranges import normalize, to_config
    from ..engine.factors import resolve_specs

    table = normalize(to_config(ranges), "ranges") if ranges else None
    return resolve_specs(list(AUGMENTATIONS) if augmentations is None else augmentations, table)


def gallery_values(
    augmentations: str | Sequence[str | Augmentation] | None = None,
    ranges: Mapping[str, Any] | None = None,
) -> dict[str, list[dict[str, float]]]:
    """The parameter values of each augmentation's gallery row: ``{name: [{parameter: value}, ...]}``.

    Values at the quantiles 0, 1/3, 2/3 and 1 of every parameter's distribution (for a uniform range:
    ``low``, a third, two thirds, ``high``), all parameters moved together; one empty panel for an op
    without parameters.  ``augmentations`` and ``ranges`` as in :func:`augsens.study` (default: the
    paper's twelve at the paper's ranges).

    Examples
    --------
    >>> gallery_values(["hue"], ranges={"hue": (-0.1, 0.1)})["hue"][0]
    {'factor': -0.1}
    """
    out = {}
    for s in _specs(augmentations, ranges):
        cells = []
        for frac in _FRACTIONS if s.params else (1.0,):
            u = torch.tensor([frac], dtype=torch.float64)
            cells.append({p.name: float(p.factor(p.name).decode(u)[0]) for p in s.params})
        out[s.name] = cells
    return out


def _combinations(
    x: torch.Tensor, specs: Sequence[Augmentation], mode: Literal["clean", "paper"], gen: torch.Generator
) -> list[tuple[torch.Tensor, str]]:
    n = len(specs)
    params = {
        s.name: {
            p.name: p.factor(p.name).decode(torch.rand(_COMBINATIONS, generator=gen, dtype=torch.float64))
            for p in s.params
        }
        for s in specs
    }
    order = torch.stack([torch.randperm(n, generator=gen) for _ in range(_COMBINATIONS)])
    y = compose(x.expand(_COMBINATIONS, -1, -1, -1), specs, params, order=order, mode=mode)
    short = [s.name.split("_")[0][:5] for s in specs]
    labels = []
    for i in range(_COMBINATIONS):
        steps = [short[k] for k in order[i].tolist()]
        labels.append("\n".join(" > ".join(steps[j : j + 4]) for j in range(0, n, 4)))
    return [(y[i], labels[i]) for i in range(_COMBINATIONS)]


def gallery(
    image: str | Path | np.ndarray,
    out: str | Path,
    *,
    mode: Literal["clean", "paper"] = "clean",
    seed: int = 0,
    augmentations: str | Sequence[str | Augmentation] | None = None,
    ranges: Mapping[str, Any] | None = None,
) -> Path:
    """Draw one photo under each augmentation and under random simultaneous combinations.

    Parameters
    ----------
    image : str, Path or numpy.ndarray
        An image file (any format Pillow reads) or an array ``[H, W, 3]`` (uint8, or float in
        [0, 1]).  Resized with ``Resize(256) + CenterCrop(224)``.
    out : str or Path
        PNG file to write (parent folders are created).
    mode : {"clean", "paper"}
        Augmentation variants (see :func:`augsens.augment.apply`).
    seed : int
        Seed of the combination rows' parameters and orders.
    augmentations : str or sequence, optional
        The augmentations shown, as in :func:`augsens.study` (default: the paper's twelve, then rows of
        set 1 and set 2 combined; otherwise one combined row of those given).
    ranges : mapping, optional
        Ranges or distributions of parameters, as in :func:`augsens.study`; the panels and the
        combinations draw from them (:func:`gallery_values`).

    Returns
    -------
    Path
        ``out``.

    Notes
    -----
    Rows 1-12: each augmentation at parameter values at 0, 1/3, 2/3 and 1 of every parameter's range
    (all parameters moved together; quantiles for a distribution), or once for parameter-free ones.
    Last two rows: set 1 and set 2 with every augmentation on, random parameters from their ranges and
    a random order (labelled first > last).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = _load(image)
    gen = torch.Generator().manual_seed(seed)
    specs = _specs(augmentations, ranges)
    values = gallery_values(specs)
    rows: list[tuple[str, list[tuple[torch.Tensor, str]]]] = []
    for s in specs:
        cells = []
        for v in values[s.name]:
            y = apply(s, x, mode=mode, validate=True, **{k: torch.tensor([p]) for k, p in v.items()})
            cells.append((y[0], _label(s.name, v)))
        rows.append((s.name if s.set is None else f"{s.name} (set {s.set})", cells))
    if augmentations is None:
        by_name = {s.name: s for s in specs}
        rows.append(("set 1, all on", _combinations(x, [by_name[n] for n in SET1], mode, gen)))
        rows.append(("set 2, all on", _combinations(x, [by_name[n] for n in SET2], mode, gen)))
    elif len(specs) > 1:
        rows.append(("all on", _combinations(x, specs, mode, gen)))

    ncols = 1 + max(len(cells) for _, cells in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.2 * ncols, 2.6 * len(rows)), squeeze=False)
    for r, (title, cells) in enumerate(rows):
        panels = [(x[0], "original")] + cells
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(panels):
                img, label = panels[c]
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_title(label, fontsize=6)
        axes[r, 0].text(
            -0.08,
            0.5,
            title,
            transform=axes[r, 0].transAxes,
            rotation=90,
            ha="right",
            va="center",
            fontsize=8,
        )
    fig.suptitle(f"augsens augmentations ({mode} mode, seed {seed})", fontsize=11)
    fig.tight_layout(rect=(0.02, 0, 1, 0.99))
    return save_figure(fig, out, dpi=80)
