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

The statistics themselves are generic and live in :mod:`augsens.core.paired`; their accumulation, the
passes and the per-checkpoint results are the :class:`~augsens.core.methods.contrast.Contrast` method's,
run by the one loop (:func:`augsens.core.loop.run`) like every method. This module is the study: it
evaluates a batch (the images and their augmented copies, forward with capture) and writes the results
tree with its provenance. :mod:`augsens.analysis.contrast` summarises finished results in tables and
figures.

The authors returned the two effect sizes under each other's names; :func:`contrast_study` names them
correctly and reproduces the swap only when asked (``swap_effect_names=True`` with ``mode="paper"``).

Nothing stores the activations of the run.  The point-biserial correlation streams (group counts, means
and centred sums of squares, merged with Chan's formula).  Ranks do not stream: the Wilcoxon test sees
all differences of one element at once, so elements are processed in blocks that fit in memory
(``block_elements``, default: 512 MiB of differences and sort workspace).  Every block is a new pass over
the images (a round of the method's design), which captures only the checkpoints the block touches; the
first pass also sees every element for the moments, in batches of at most 512 MiB of outputs.
Augmentation parameters come from a counter-based generator keyed on ``(seed, augmentation, image,
draw)``, so each pass regenerates identical images.
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
from augsens.core import loop
from augsens.core.budget import Budget
from augsens.core.estimate import MomentsAccumulator
from augsens.core.methods import Batch
from augsens.core.methods.contrast import Contrast, ContrastAccumulator, block_for, moments_of
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
    return moments_of(m)


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
) -> tuple[Contrast, ContrastAccumulator, dict[str, tuple[int, ...]]]:
    """The passes of the :class:`~augsens.core.methods.contrast.Contrast` method over the images, through
    the one loop: returns the method, its filled accumulator and the checkpoints' element shapes."""
    probe = capture(gather(torch.zeros(1, dtype=torch.long)).to(device), checkpoints)
    shapes = {c: tuple(probe[c].shape[1:]) for c in checkpoints}
    sizes = [math.prod(shapes[c]) for c in checkpoints]
    n_pairs = [n_images * (p.draws if pairing == "draw" else 1) for p in plans]
    method = Contrast(
        [p.name for p in plans],
        [p.draws for p in plans],
        n_images,
        sizes,
        block=block_elements or block_for(n_pairs, DEFAULT_BLOCK_BYTES, _BYTES_PER_PAIR_ELEMENT),
        pairing=pairing,
        signed=signed,
        seed=seed,
        first_pass_bytes=DEFAULT_BLOCK_BYTES,
        device=device,
    )
    offsets = method.offsets

    def flat(acts: Mapping[str, torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        # Concatenate the slices of the global element range [lo, hi) from every checkpoint it touches.
        parts = []
        for i, c in enumerate(checkpoints):
            a, b = max(lo, offsets[i]), min(hi, offsets[i + 1])
            if a < b:
                parts.append(acts[c].reshape(acts[c].shape[0], -1)[:, a - offsets[i] : b - offsets[i]])
        return torch.cat(parts, dim=1).float()

    def evaluate(batch: Batch) -> torch.Tensor:
        """Outputs ``[count * R, width]`` of a batch: each image, then its copies per treatment."""
        block, first = method.position(batch)
        lo, hi = method.span(block)
        wanted = [checkpoints[i] for i in method.outputs_in(lo, hi)]  # only what the pass ranks
        idx = torch.arange(first, first + batch.count)
        x = gather(idx).to(device)
        rows = [flat(capture(x, wanted), lo, hi)[:, None]]
        for plan in plans:
            draws = (idx[:, None] * plan.draws + torch.arange(plan.draws)[None, :]).reshape(-1).numpy()
            y = apply(plan.spec, x.repeat_interleave(plan.draws, dim=0), plan.parameters(seed, draws, device))
            rows.append(flat(capture(y, wanted), lo, hi).view(batch.count, plan.draws, hi - lo))
        return torch.cat(rows, dim=1).reshape(-1, hi - lo)

    # one pass over the images per block of elements (the rounds of the method's design); a batch holds
    # batch_size // max(draws) images, so that one augmentation's forward holds at most batch_size copies
    chunk = max(1, batch_size // max(method.draws))
    hooks = loop.OneAccumulator(method, evaluate)
    budget = Budget(n=method.n, max_n=method.n)  # every pass: no precision target, no time limit
    loop.run(method, hooks, budget, batch_rows=chunk * method.rows_per_sample)
    return method, hooks.accumulator, shapes


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

    method, acc, shapes = _run_contrast(
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
    if image_size is None:  # not images: dims from the network itself, e.g. (channel, time) of a Conv1d
        from augsens.models.layout import checkpoint_layouts

        dims_of = {c: lay.dims for c, lay in checkpoint_layouts(model, names).items()}
    else:
        dims_of = {c: output_dims(shapes[c]) for c in names}
    nodes = method.results(
        acc, {c: (shapes[c], dims_of[c]) for c in names}, swap_effect_names=swap_effect_names
    )
    tree = _contrast_tree(nodes, method, acc, config)
    if out is not None:
        from augsens.results import write_results

        write_results(tree, out)
    return tree


def _contrast_tree(
    nodes: Mapping[str, xr.Dataset], method: Contrast, acc: ContrastAccumulator, config: Mapping[str, Any]
) -> xr.DataTree:
    """The results tree: the method's nodes and the study's provenance in the root attributes."""
    from augsens.schema import results_tree, versions

    root = {
        "augsens_results": 1,
        "kind": "contrast",
        "model": str(config.get("model")),
        "versions": json.dumps(versions()),
        "config": json.dumps(dict(config)),
        "checkpoints": json.dumps(list(nodes)),
        "n_passes": int(acc.passes_done),
        "block_elements": int(method.block),
        "untested_elements": int(acc.untested),
    }
    return results_tree(root, nodes)
