"""Treatment–control ("contrast") study: each augmentation alone against the original image.

For every image the network sees the original (control) and ``draws`` augmented copies (treatment), one
augmentation at a time, several parameter draws each (a parameter-free op gives one copy).  Per activation
element the study reports

* the paired **Wilcoxon signed-rank** test of the differences ``d = a(augmented) - a(original)`` with
  the authors' settings: zeros split between the signed rank sums ("zsplit"), continuity correction,
  two-sided, normal approximation (``authors-code-spec.md`` section 4.2);
* the **matched-pairs rank-biserial** correlation ``(R+ - R-) / (n (n + 1) / 2)`` (Kerby 2014), signed;
* the **point-biserial** correlation between group membership (original / augmented) and the activation;
* Benjamini–Yekutieli adjusted p-values, really applied (the authors' correction was a no-op).

The authors returned the two effect sizes under each other's names; :func:`contrast_study` names them
correctly and reproduces the swap only when asked (``swap_effect_names=True`` with ``mode="paper"``).

Nothing stores the activations of the run.  The point-biserial correlation streams (group counts, means
and centred sums of squares, merged with Chan's formula).  Ranks do not stream: the Wilcoxon test sees
all differences of one element at once, so elements are processed in blocks that fit in memory.  Every
block is a new pass over the images; augmentation parameters come from a counter-based generator keyed on
``(seed, augmentation, image, draw)``, so each pass regenerates identical images.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import numpy as np
import scipy.stats
import torch
import xarray as xr

from augsens.augment.draws import single_draws
from augsens.augment.registry import UnknownAugmentationError
from augsens.core.estimate import MomentsAccumulator
from augsens.errors import UserInputError
from augsens.results import output_dims

if TYPE_CHECKING:
    from augsens.data import ImageCache
    from augsens.models import LoadedModel

__all__ = [
    "WilcoxonResult",
    "wilcoxon_zsplit",
    "rank_biserial",
    "point_biserial",
    "benjamini_yekutieli",
    "contrast_study",
    "contrast_report",
]

#: Bytes of device memory a block of differences (and its sort workspace) may take when ``block_elements``
#: is not given.
DEFAULT_BLOCK_BYTES = 512 * 2**20
#: Work per (pair, element) while ranking: float32 difference, sorted values, int64 order, float64 ranks,
#: group bounds and masks.
_BYTES_PER_PAIR_ELEMENT = 48


class WilcoxonResult(NamedTuple):
    """Per-element Wilcoxon signed-rank results (float64 tensors, one value per element).

    Attributes
    ----------
    statistic : torch.Tensor
        ``min(R+, R-)``, scipy's two-sided statistic.
    z : torch.Tensor
        Continuity-corrected normal score of ``R+`` (positive where augmentation raises the activation).
    p_value : torch.Tensor
        Two-sided p-value from the normal approximation.
    r_plus, r_minus : torch.Tensor
        Rank sums of positive and negative differences, half of the zeros' ranks added to each.
    n : int
        Number of pairs (zeros included, as "zsplit" counts them).
    """

    statistic: torch.Tensor
    z: torch.Tensor
    p_value: torch.Tensor
    r_plus: torch.Tensor
    r_minus: torch.Tensor
    n: int


def wilcoxon_zsplit(d: torch.Tensor, *, dim: int = 0, correction: bool = True) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test with split zeros, vectorised over elements.

    Equal to ``scipy.stats.wilcoxon(d, zero_method="zsplit", correction=correction,
    alternative="two-sided", method="asymptotic", axis=dim)`` element by element, computed on ``d``'s device.

    Parameters
    ----------
    d : torch.Tensor
        Paired differences, any float dtype; ``dim`` indexes the pairs, the other dims are elements.
    dim : int
        Dimension of the pairs. Default: 0.
    correction : bool
        Continuity correction of 0.5 towards the mean of the statistic. Default: True.

    Returns
    -------
    WilcoxonResult
        Each tensor has ``d``'s shape without ``dim`` and dtype float64.  An element whose differences
        are not all finite gets NaN everywhere.

    Notes
    -----
    Ranks of ``|d|`` are average ranks over ties (zeros included) from one sort per element: a tie group
    occupying sorted positions ``a..b`` (1-based) gets rank ``(a + b) / 2``.  With ``n`` pairs,

    .. math::

        \\mu = n(n+1)/4, \\qquad
        \\sigma^2 = \\frac{n(n+1)(2n+1) - \\tfrac12 \\sum_g (t_g^3 - t_g)}{24}, \\qquad
        z = \\frac{R_+ - \\mu - \\tfrac12 \\operatorname{sign}(R_+ - \\mu)}{\\sigma},

    summed over tie groups ``g`` of size ``t_g``, and ``p = erfc(|z| / sqrt 2)``.  When every difference
    is zero, ``R+ = R- = mu`` and ``p = 1``.

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin 1(6), 80-83.
    doi:10.2307/3001968
    """
    if not torch.is_floating_point(d):
        raise TypeError(f"d must be a floating-point tensor, got dtype {d.dtype}")
    d = d.movedim(dim, 0)
    n = d.shape[0]
    if n == 0:
        raise ValueError("d has no pairs along dim; the test needs at least one pair")
    finite = torch.isfinite(d).all(dim=0)
    order = torch.argsort(d.abs(), dim=0)
    sorted_abs = d.abs().gather(0, order)
    sign = torch.sign(d).gather(0, order)
    del order
    new_group = torch.ones_like(sorted_abs, dtype=torch.bool)
    new_group[1:] = sorted_abs[1:] != sorted_abs[:-1]
    ends_group = torch.ones_like(new_group)
    ends_group[:-1] = new_group[1:]
    del sorted_abs
    pos = torch.arange(1, n + 1, device=d.device, dtype=torch.float64).view(-1, *([1] * (d.dim() - 1)))
    pos = pos.expand(new_group.shape)
    start = torch.where(new_group, pos, 0.0).cummax(dim=0).values
    end = torch.where(ends_group, pos, float(n + 1)).flip(0).cummin(dim=0).values.flip(0)
    rank = (start + end) / 2
    half_zero = (rank * (sign == 0)).sum(dim=0) / 2
    r_plus = (rank * (sign > 0)).sum(dim=0) + half_zero
    r_minus = (rank * (sign < 0)).sum(dim=0) + half_zero
    # Summing t^2 - 1 over the t positions of a tie group gives that group's t^3 - t.
    size = end - start + 1
    ties = (size * size - 1).sum(dim=0)
    mean = n * (n + 1) / 4
    se = torch.sqrt((n * (n + 1) * (2 * n + 1) - ties / 2) / 24)
    z = (r_plus - mean) / se
    if correction:
        z = z - torch.sign(z) * 0.5 / se
    p = torch.special.erfc(z.abs() / math.sqrt(2)).clamp(max=1.0)
    statistic = torch.minimum(r_plus, r_minus)
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=d.device)
    statistic, z, p, r_plus, r_minus = (
        torch.where(finite, t, nan) for t in (statistic, z, p, r_plus, r_minus)
    )
    return WilcoxonResult(statistic, z, p, r_plus, r_minus, n=n)


def rank_biserial(
    r_plus: torch.Tensor, r_minus: torch.Tensor, n: int, *, signed: bool = True
) -> torch.Tensor:
    """Matched-pairs rank-biserial correlation ``(R+ - R-) / (n (n + 1) / 2)``.

    Parameters
    ----------
    r_plus, r_minus : torch.Tensor
        Signed rank sums from :func:`wilcoxon_zsplit` (zeros split).
    n : int
        Number of pairs.
    signed : bool
        Keep the sign (positive where the treatment raises the value). ``False`` gives the authors' unsigned
        ``4 |T - (R+ + R-)/2| / (n (n + 1))``, which equals the absolute value. Default: True.

    Returns
    -------
    torch.Tensor
        Values in ``[-1, 1]`` (``[0, 1]`` when unsigned).

    References
    ----------
    Kerby, D. S. (2014). The simple difference formula: an approach to teaching nonparametric correlation.
    Comprehensive Psychology 3, 11.IT.3.1. doi:10.2466/11.IT.3.1
    """
    r = (r_plus - r_minus) / (n * (n + 1) / 2)
    return r if signed else r.abs()


def point_biserial(
    n0: float | torch.Tensor,
    mean0: torch.Tensor,
    m2_0: torch.Tensor,
    n1: float | torch.Tensor,
    mean1: torch.Tensor,
    m2_1: torch.Tensor,
) -> torch.Tensor:
    """Point-biserial correlation of two groups from their streamed moments.

    Parameters
    ----------
    n0, n1 : float or torch.Tensor
        Sizes of the control (original) and treatment (augmented) groups: scalars, or per element
        where non-finite values were dropped.
    mean0, mean1 : torch.Tensor
        Group means per element.
    m2_0, m2_1 : torch.Tensor
        Centred sums of squares per element, ``sum (x - mean)^2``.

    Returns
    -------
    torch.Tensor
        ``(m1 - m0) sqrt(p0 p1) / s``, with ``p_g = n_g / (n0 + n1)`` and ``s`` the population standard
        deviation of both groups pooled (the Pearson correlation between the 0/1 group label and the
        value).  Elements whose pooled variance is zero (an activation no image or augmentation moves)
        get 0: there is no association, and the authors' ``+1e-20`` gave the same.
    """
    n = n0 + n1
    delta = mean1 - mean0
    total_m2 = m2_0 + m2_1 + delta * delta * (n0 * n1 / n)
    p0p1 = (n0 / n) * (n1 / n)
    sd = torch.sqrt(total_m2.clamp(min=0) / n)
    r = delta * torch.sqrt(torch.as_tensor(p0p1, dtype=delta.dtype, device=delta.device)) / sd
    return torch.where(sd > 0, r, torch.zeros_like(r))


def benjamini_yekutieli(p: np.ndarray) -> np.ndarray:
    """Benjamini–Yekutieli adjusted p-values over one family (all finite entries of ``p``).

    A thin wrapper of ``scipy.stats.false_discovery_control(p, method="by")`` that leaves NaN entries
    (elements without a test) as NaN and out of the family.

    Parameters
    ----------
    p : numpy.ndarray
        p-values of any shape.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape, float64.

    References
    ----------
    Benjamini, Y. & Yekutieli, D. (2001). The control of the false discovery rate in multiple testing under
    dependency. Annals of Statistics 29(4), 1165-1188. doi:10.1214/aos/1013699998
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = scipy.stats.false_discovery_control(p[ok], method="by")
    return out


@dataclass(frozen=True)
class _AugPlan:
    """One treatment: augmentation name and draws per image (1 for an augmentation without parameters)."""

    name: str
    draws: int

    def parameters(self, seed: int, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Parameter tensors ``[len(rows)]`` for global rows ``image * draws + draw``."""
        from augsens.augment import AUGMENTATIONS

        return single_draws(AUGMENTATIONS[self.name], rows, seed, device)


def _moments(m: MomentsAccumulator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-element count, mean and centred sum of squares of a moments accumulator's state."""
    count, mean, comoment = m._state()
    return count[0].to(torch.float64), mean[0, 0], comoment[0, 0]


def _auto_block(n_pairs: Sequence[int], block_bytes: int) -> int:
    per_element = 4 * sum(n_pairs) + _BYTES_PER_PAIR_ELEMENT * max(n_pairs)
    return max(1, block_bytes // per_element)


def _run_contrast(
    capture: Callable[[torch.Tensor, Sequence[str]], Mapping[str, torch.Tensor]],
    gather: Callable[[torch.Tensor], torch.Tensor],
    apply: Callable[[str, torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor],
    plans: Sequence[_AugPlan],
    checkpoints: Sequence[str],
    n_images: int,
    *,
    seed: int,
    pairing: Literal["draw", "image"],
    block_elements: int | None,
    batch_size: int,
    device: torch.device,
    signed: bool,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, tuple[int, ...]], dict[str, Any]]:
    """The block passes; returns per-checkpoint ``{variable: [A, E] array}``, element shapes and counts."""
    probe = capture(gather(torch.zeros(1, dtype=torch.long)).to(device), checkpoints)
    shapes = {c: tuple(probe[c].shape[1:]) for c in checkpoints}
    sizes = [math.prod(shapes[c]) for c in checkpoints]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    total = int(offsets[-1])
    n_pairs = [n_images * (p.draws if pairing == "draw" else 1) for p in plans]
    block = block_elements or _auto_block(n_pairs, DEFAULT_BLOCK_BYTES)
    max_draws = max(p.draws for p in plans)
    chunk = max(1, batch_size // max_draws)
    n_aug = len(plans)
    out = {
        name: np.full((n_aug, total), np.nan)
        for name in ("wilcoxon_stat", "wilcoxon_z", "p_value", "rank_biserial", "point_biserial")
    }
    # point-biserial streams: per-element moments of the originals and of each augmentation's copies
    moments0 = MomentsAccumulator(device=device)
    moments1 = [MomentsAccumulator(device=device) for _ in plans]
    non_finite = 0

    def flat(acts: Mapping[str, torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        # Concatenate the slices of the global element range [lo, hi) from every checkpoint it touches.
        parts = []
        for i, c in enumerate(checkpoints):
            a, b = max(lo, offsets[i]), min(hi, offsets[i + 1])
            if a < b:
                parts.append(acts[c].reshape(acts[c].shape[0], -1)[:, a - offsets[i] : b - offsets[i]])
        return torch.cat(parts, dim=1).float()

    n_passes = 0
    for lo in range(0, total, block):
        hi = min(total, lo + block)
        first = lo == 0
        needed = [c for i, c in enumerate(checkpoints) if offsets[i] < hi and offsets[i + 1] > lo]
        wanted = list(checkpoints) if first else needed
        buffers = [torch.empty(m, hi - lo, dtype=torch.float32, device=device) for m in n_pairs]
        for i0 in range(0, n_images, chunk):
            idx = torch.arange(i0, min(n_images, i0 + chunk))
            b = len(idx)
            x = gather(idx).to(device)
            acts0 = capture(x, wanted)
            if first:
                moments0.update(flat(acts0, 0, total))
            orig = flat(acts0, lo, hi)
            for a, plan in enumerate(plans):
                rows = (idx[:, None] * plan.draws + torch.arange(plan.draws)[None, :]).reshape(-1).numpy()
                y = apply(
                    plan.name, x.repeat_interleave(plan.draws, dim=0), plan.parameters(seed, rows, device)
                )
                acts1 = capture(y, wanted)
                if first:
                    moments1[a].update(flat(acts1, 0, total))
                d = flat(acts1, lo, hi).view(b, plan.draws, hi - lo) - orig[:, None, :]
                if pairing == "draw":
                    buffers[a][i0 * plan.draws : (i0 + b) * plan.draws] = d.reshape(-1, hi - lo)
                else:
                    buffers[a][i0 : i0 + b] = d.mean(dim=1)
        for a, buf in enumerate(buffers):
            res = wilcoxon_zsplit(buf)
            non_finite += int(torch.isnan(res.p_value).sum())
            out["wilcoxon_stat"][a, lo:hi] = res.statistic.cpu().numpy()
            out["wilcoxon_z"][a, lo:hi] = res.z.cpu().numpy()
            out["p_value"][a, lo:hi] = res.p_value.cpu().numpy()
            out["rank_biserial"][a, lo:hi] = (
                rank_biserial(res.r_plus, res.r_minus, res.n, signed=signed).cpu().numpy()
            )
        del buffers
        n_passes += 1
    for a in range(n_aug):
        r = point_biserial(*_moments(moments0), *_moments(moments1[a]))
        out["point_biserial"][a] = r.cpu().numpy()
    per_ckpt = {
        c: {k: v[:, offsets[i] : offsets[i + 1]] for k, v in out.items()} for i, c in enumerate(checkpoints)
    }
    counts = {
        "n_passes": n_passes,
        "block_elements": block,
        "n_pairs": n_pairs,
        "untested_elements": non_finite,
    }
    return per_ckpt, shapes, counts


def _plans(augmentations: Sequence[str] | None, draws: int) -> list[_AugPlan]:
    from augsens.augment import AUGMENTATIONS

    names = list(AUGMENTATIONS) if augmentations is None else list(augmentations)
    if not names:
        raise UserInputError("augmentations is empty; name at least one of " + repr(list(AUGMENTATIONS)))
    plans = []
    for name in names:
        if name not in AUGMENTATIONS:
            close = difflib.get_close_matches(str(name), list(AUGMENTATIONS), n=3)
            hint = f" Did you mean {close!r}?" if close else ""
            raise UnknownAugmentationError(
                f"unknown augmentation {name!r}; allowed: {list(AUGMENTATIONS)!r}.{hint}"
            )
        # A parameter-free op gives the same image every time: one copy per image, as the authors did.
        plans.append(_AugPlan(name, draws if AUGMENTATIONS[name].params else 1))
    return plans


def contrast_study(
    model: LoadedModel,
    images: ImageCache,
    *,
    augmentations: Sequence[str] | None = None,
    draws: int = 10,
    n_images: int | None = None,
    checkpoints: Sequence[str] | None = None,
    seed: int = 0,
    pairing: Literal["draw", "image"] | None = None,
    block_elements: int | None = None,
    batch_size: int = 256,
    mode: Literal["clean", "paper"] = "clean",
    swap_effect_names: bool = False,
    out: str | Path | None = None,
) -> xr.DataTree:
    """Run the treatment–control study: every augmentation alone against the original image.

    Parameters
    ----------
    model : LoadedModel
        From :func:`augsens.models.load`; its ``capture(x, checkpoints=...)`` gives the activations.
    images : ImageCache
        Image source; ``gather(idx)`` gives float ``[b, 3, H, W]`` in ``[0, 1]``.
    augmentations : sequence of str, optional
        Names from :data:`augsens.augment.AUGMENTATIONS`. Default: all twelve.
    draws : int
        Parameter draws per image for an augmentation with parameters (parameter-free ones get one).
        Default: 10 (the authors' ``Ninner``).
    n_images : int, optional
        Use the first ``n_images`` images of ``images``. Default: all.
    checkpoints : sequence of str, optional
        Checkpoints analysed. Default: ``model.checkpoints``.
    seed : int
        Key of the counter-based parameter generator. Default: 0.
    pairing : {"draw", "image"}, optional
        ``"draw"``: one pair per draw, each original reused ``draws`` times (the authors'; pseudo-replicated,
        ``n = n_images * draws``). ``"image"``: one pair per image, the original against the mean over its
        draws (independent pairs, ``n = n_images``). Default: ``"draw"`` in paper mode, ``"image"`` in clean.
    block_elements : int, optional
        Activation elements ranked per pass. Each extra block costs one more pass over all images.
        Default: as many as fit in 512 MiB of the model's device.
    batch_size : int
        Images per forward pass (augmented copies of ``batch_size // draws`` images). Default: 256.
    mode : {"clean", "paper"}
        Passed to the augmentations. Paper mode also min-max rescales every image channel before the
        network's normalisation and reports the authors' unsigned rank-biserial value.
    swap_effect_names : bool
        Paper mode only: store the point-biserial map under ``rank_biserial`` and vice versa, as the authors'
        files did. Default: False.
    out : str or Path, optional
        Results folder; the tree is written to ``out/results.zarr``.

    Returns
    -------
    xarray.DataTree
        One child per checkpoint with variables ``wilcoxon_stat`` (``min(R+, R-)``), ``wilcoxon_z``,
        ``p_value``, ``p_value_by`` (Benjamini–Yekutieli over all elements of all checkpoints, one family
        per augmentation), ``rank_biserial``, ``point_biserial``, dims ``("augmentation", "channel", "y",
        "x")`` or ``("augmentation", "unit")``, and ``n_pairs`` (dim ``augmentation``).  Root attributes:
        ``config`` (JSON), ``checkpoints``, ``n_passes``, ``block_elements``, ``untested_elements``
        (elements with non-finite activations, NaN in every map).

    Raises
    ------
    ValueError
        Bad ``draws``, ``n_images``, ``batch_size``, ``block_elements``, ``mode``, ``pairing`` or a swap
        asked outside paper mode.
    KeyError
        Unknown augmentation or checkpoint name (raised before the first pass).
    """
    from augsens.augment import apply as apply_augmentation
    from augsens.augment import postprocess

    if mode not in ("clean", "paper"):
        raise UserInputError(f"mode must be 'clean' or 'paper', got {mode!r}")
    if swap_effect_names and mode != "paper":
        raise UserInputError(
            "swap_effect_names=True reproduces the authors' naming bug; it needs mode='paper'"
        )
    if pairing is None:
        pairing = "draw" if mode == "paper" else "image"
    if pairing not in ("draw", "image"):
        raise UserInputError(f"pairing must be 'draw' or 'image', got {pairing!r}")
    for name, value, low in (("draws", draws, 1), ("batch_size", batch_size, 1)):
        if int(value) != value or value < low:
            raise UserInputError(f"{name} must be an integer >= {low}, got {value!r}")
    if block_elements is not None and (int(block_elements) != block_elements or block_elements < 1):
        raise UserInputError(f"block_elements must be a positive integer or None, got {block_elements!r}")
    available = int(images.images.shape[0])
    n_images = available if n_images is None else n_images
    if int(n_images) != n_images or not 1 <= n_images <= available:
        raise UserInputError(
            f"n_images must be an integer in [1, {available}] (images in the cache), got {n_images!r}"
        )
    # Unknown names are refused by model.capture itself, on the one-image probe before any pass.
    names = list(model.checkpoints if checkpoints is None else checkpoints)
    plans = _plans(augmentations, draws)
    device = torch.device(model.device)

    def capture(x: torch.Tensor, ckpts: Sequence[str]) -> Mapping[str, torch.Tensor]:
        with torch.no_grad():
            if mode == "paper":  # the authors' per-channel min-max rescale before normalisation (spec 1.4)
                x = postprocess(x, model.mean, model.std, minmax=True)
                return model.capture(x, checkpoints=list(ckpts), normalized=True)
            return model.capture(x, checkpoints=list(ckpts))

    def apply(name: str, x: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return apply_augmentation(name, x, mode=mode, validate=True, **params)

    per_ckpt, shapes, counts = _run_contrast(
        capture,
        images.gather,
        apply,
        plans,
        names,
        n_images,
        seed=seed,
        pairing=pairing,
        block_elements=block_elements,
        batch_size=batch_size,
        device=device,
        signed=mode == "clean",
    )
    config = {
        "kind": "contrast",
        "model": str(getattr(model, "name", type(model).__name__)),
        "augmentations": [p.name for p in plans],
        "draws": draws,
        "n_images": n_images,
        "seed": seed,
        "pairing": pairing,
        "batch_size": batch_size,
        "mode": mode,
        "swap_effect_names": swap_effect_names,
        "fdr": "benjamini-yekutieli, one family per augmentation over all checkpoints",
    }
    tree = _contrast_tree(per_ckpt, shapes, plans, counts, config, swap_effect_names)
    if out is not None:
        from augsens.results import write_results

        write_results(tree, out)
    return tree


def _contrast_tree(
    per_ckpt: Mapping[str, Mapping[str, np.ndarray]],
    shapes: Mapping[str, tuple[int, ...]],
    plans: Sequence[_AugPlan],
    counts: Mapping[str, Any],
    config: Mapping[str, Any],
    swap_effect_names: bool,
) -> xr.DataTree:
    from augsens.results import versions

    names = [p.name for p in plans]
    # BY family: all elements of all checkpoints, per augmentation (the authors' intended grouping).
    p_all = np.concatenate([v["p_value"] for v in per_ckpt.values()], axis=1)
    by_all = np.stack([benjamini_yekutieli(row) for row in p_all])
    nodes: dict[str, xr.Dataset] = {}
    start = 0
    for c, values in per_ckpt.items():
        shape = shapes[c]
        dims = ("augmentation", *output_dims(shape))
        size = values["p_value"].shape[1]
        data = dict(values)
        data["p_value_by"] = by_all[:, start : start + size]
        start += size
        if swap_effect_names:
            data["rank_biserial"], data["point_biserial"] = data["point_biserial"], data["rank_biserial"]
        ds = xr.Dataset(
            {k: (dims, v.reshape(len(names), *shape)) for k, v in sorted(data.items())},
            coords={"augmentation": names, **{d: np.arange(s) for d, s in zip(dims[1:], shape, strict=True)}},
        )
        ds["n_pairs"] = ("augmentation", np.asarray(counts["n_pairs"], dtype=np.int64))
        nodes[c] = ds
    root = xr.Dataset(
        attrs={
            "augsens_results": 1,
            "kind": "contrast",
            "model": str(config.get("model")),
            "versions": json.dumps(versions()),
            "config": json.dumps(dict(config)),
            "checkpoints": json.dumps(list(per_ckpt)),
            "n_passes": int(counts["n_passes"]),
            "block_elements": int(counts["block_elements"]),
            "untested_elements": int(counts["untested_elements"]),
        }
    )
    return xr.DataTree.from_dict({"/": root, **nodes})


def contrast_report(
    results_dirs: Sequence[str | Path], out_dir: str | Path, *, alpha: float = 0.05
) -> list[Path]:
    """Tables and figures of contrast results: share of significant elements and mean effect sizes.

    Parameters
    ----------
    results_dirs : sequence of str or Path
        Results folders written by :func:`contrast_study`.
    out_dir : str or Path
        Output folder (created).
    alpha : float
        Level for the Benjamini–Yekutieli adjusted p-values. Default: 0.05.

    Returns
    -------
    list of Path
        ``contrast_summary.csv`` (one row per study, checkpoint and augmentation: share of elements with
        ``p_value_by < alpha``, mean ``|rank_biserial|``, mean ``|point_biserial|``) and, per study, a PNG
        heatmap per quantity (checkpoints by augmentations).
    """
    import pandas as pd

    from augsens.analysis.correlation import plot_heatmap
    from augsens.plot.figures import save_figure
    from augsens.results import open_results

    if not 0 < alpha < 1:
        raise UserInputError(f"alpha must lie in (0, 1), got {alpha!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    written: list[Path] = []
    for rdir in results_dirs:
        tree = open_results(rdir)
        study = Path(rdir).name
        table: dict[str, dict[str, list[float]]] = {}
        ckpts = [c for c in tree.children if "p_value_by" in tree[c].data_vars]
        if not ckpts:
            raise UserInputError(
                f"{str(rdir)!r} holds no contrast results (no 'p_value_by'); run contrast_study"
            )
        for c in ckpts:
            ds = tree[c].to_dataset()
            other = [d for d in ds["p_value_by"].dims if d != "augmentation"]
            share = (ds["p_value_by"] < alpha).mean(other)
            rb = abs(ds["rank_biserial"]).mean(other)
            pb = abs(ds["point_biserial"]).mean(other)
            for a in ds["augmentation"].values:
                rows.append(
                    {
                        "study": study,
                        "checkpoint": c,
                        "augmentation": str(a),
                        "share_significant_by": float(share.sel(augmentation=a)),
                        "mean_abs_rank_biserial": float(rb.sel(augmentation=a)),
                        "mean_abs_point_biserial": float(pb.sel(augmentation=a)),
                    }
                )
            for key, arr in (
                ("share_significant_by", share),
                ("mean_abs_rank_biserial", rb),
                ("mean_abs_point_biserial", pb),
            ):
                table.setdefault(key, {})[c] = [float(v) for v in arr.values]
        augs = [str(a) for a in cast(xr.DataArray, tree[ckpts[0]]["augmentation"]).values]
        for key, by_ckpt in table.items():
            matrix = np.array([by_ckpt[c] for c in ckpts])
            fig = plot_heatmap(
                matrix, ckpts, augs, title=f"{study}: {key}", vmin=0.0, vmax=1.0, cmap="viridis"
            )
            written.append(save_figure(fig, out / f"contrast_{study}_{key}.png", dpi=120))
    csv = out / "contrast_summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [csv, *written]
