"""Treatment–control ("contrast") study: each augmentation alone against the original image.

For every image the network sees the original (control) and ``draws`` augmented copies (treatment), one
augmentation at a time, several parameter draws each (a parameter-free op gives one copy).  Per activation
element the study reports

* the paired **Wilcoxon signed-rank** test of the differences ``d = a(augmented) - a(original)`` with
  the authors' settings: zeros split between the signed rank sums ("zsplit"), continuity correction,
  two-sided, normal approximation (``docs/paper.md`` §9);
* the **matched-pairs rank-biserial** correlation ``(R+ - R-) / (n (n + 1) / 2)`` (Kerby 2014), signed;
* the **point-biserial** correlation between group membership (original / augmented) and the activation;
* Benjamini–Yekutieli adjusted p-values, really applied (the authors' correction was a no-op).

The statistics themselves are generic and live in :mod:`augsens.core.paired`; this module is the study:
the passes over the images, the augmented copies and the results tree.  :mod:`augsens.analysis.contrast`
summarises finished results in tables and figures.

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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import xarray as xr

from augsens.augment.draws import single_draws
from augsens.augment.protocol import Augmentation
from augsens.augment.registry import UnknownAugmentationError
from augsens.core.estimate import MomentsAccumulator
from augsens.core.paired import benjamini_yekutieli, point_biserial, rank_biserial, wilcoxon_zsplit
from augsens.errors import UserInputError
from augsens.results import output_dims

if TYPE_CHECKING:
    from augsens.data import SampleCache
    from augsens.models import LoadedModel

__all__ = ["contrast_study"]

#: Bytes of device memory a block of differences (and its sort workspace) may take when ``block_elements``
#: is not given.
DEFAULT_BLOCK_BYTES = 512 * 2**20
#: Work per (pair, element) while ranking: float32 difference, sorted values, int64 order, float64 ranks,
#: group bounds and masks.
_BYTES_PER_PAIR_ELEMENT = 48


@dataclass(frozen=True)
class _AugPlan:
    """One treatment: augmentation and draws per image (1 for an augmentation without parameters)."""

    augmentation: str | Augmentation
    draws: int

    @property
    def spec(self) -> Augmentation:
        from augsens.augment import spec

        return spec(self.augmentation)

    @property
    def name(self) -> str:
        return self.spec.name

    def parameters(self, seed: int, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Parameter tensors ``[len(rows)]`` for global rows ``image * draws + draw``."""
        return single_draws(self.spec, rows, seed, device)


def _moments(m: MomentsAccumulator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-element count, mean and centred sum of squares of a moments accumulator's state."""
    count, mean, comoment = m.state_tensors()
    return count[0].to(torch.float64), mean[0, 0], comoment[0, 0]


def _auto_block(n_pairs: Sequence[int], block_bytes: int) -> int:
    per_element = 4 * sum(n_pairs) + _BYTES_PER_PAIR_ELEMENT * max(n_pairs)
    return max(1, block_bytes // per_element)


def _run_contrast(
    capture: Callable[[torch.Tensor, Sequence[str]], Mapping[str, torch.Tensor]],
    gather: Callable[[torch.Tensor], torch.Tensor],
    apply: Callable[[Augmentation, torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor],
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
                    plan.spec, x.repeat_interleave(plan.draws, dim=0), plan.parameters(seed, rows, device)
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


def _plans(
    augmentations: Sequence[str | Augmentation] | None,
    draws: int,
    image_size: tuple[int, int] | None = (224, 224),
) -> list[_AugPlan]:
    """One plan per augmentation, the paper's pixel bounds scaled to ``image_size`` (height, width; None:
    inputs that are not images)."""
    from augsens.augment import AUGMENTATIONS, available, spec
    from augsens.augment.scaling import at_size

    names = list(AUGMENTATIONS) if augmentations is None else list(augmentations)
    if not names:
        raise UserInputError("augmentations is empty; name at least one of " + repr(list(AUGMENTATIONS)))
    plans = []
    known = available()
    for name in names:
        if isinstance(name, str) and ":" not in name and name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=3)
            hint = f" Did you mean {close!r}?" if close else ""
            raise UnknownAugmentationError(f"unknown augmentation {name!r}; allowed: {list(known)!r}.{hint}")
        s = spec(name) if image_size is None else at_size(spec(name), *image_size)
        # A parameter-free op gives the same image every time: one copy per image, as the authors did.
        plans.append(_AugPlan(s, draws if s.params else 1))
    return plans


def contrast_study(
    model: LoadedModel,
    images: SampleCache,
    *,
    augmentations: Sequence[str | Augmentation] | None = None,
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
    images : SampleCache
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
    available = len(images)
    n_images = available if n_images is None else n_images
    if int(n_images) != n_images or not 1 <= n_images <= available:
        raise UserInputError(
            f"n_images must be an integer in [1, {available}] (images in the cache), got {n_images!r}"
        )
    # Unknown names are refused by model.capture itself, on the one-image probe before any pass.
    names = list(model.checkpoints if checkpoints is None else checkpoints)
    shape = images.sample_shape
    image_size = (int(shape[-2]), int(shape[-1])) if len(shape) == 3 else None
    model.input_shape = shape  # the network takes inputs of the images' (or samples') own shape
    plans = _plans(augmentations, draws, image_size)
    device = torch.device(model.device)

    def capture(x: torch.Tensor, ckpts: Sequence[str]) -> Mapping[str, torch.Tensor]:
        with torch.no_grad():
            if mode == "paper":  # the authors' per-channel min-max rescale (docs/paper.md §3)
                x = postprocess(x, model.mean, model.std, minmax=True)
                return model.capture(x, checkpoints=list(ckpts), normalized=True)
            return model.capture(x, checkpoints=list(ckpts))

    def apply(name: str | Augmentation, x: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
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
    dims_of = None
    if image_size is None:  # not images: dims from the network itself, e.g. (channel, time) of a Conv1d
        from augsens.models.layout import checkpoint_layouts

        dims_of = {c: lay.dims for c, lay in checkpoint_layouts(model, list(per_ckpt)).items()}
    tree = _contrast_tree(per_ckpt, shapes, plans, counts, config, swap_effect_names, dims_of)
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
    dims_of: Mapping[str, tuple[str, ...]] | None = None,
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
        dims = ("augmentation", *(dims_of[c] if dims_of else output_dims(shape)))
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
