"""The masking run: predictions under every mask row on the original and augmented images, summed.

For one results folder, :func:`run_masking` feeds the images and each augmentation that is a factor of the
study (counter-based parameter draws, keyed like the contrast study) through a
:class:`~.guided.GuidedMasking`, and sums top-1 / top-5 hits and single-class Jaccard indices per input
and mask row into a :class:`MaskingRun`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from augsens.analysis.masking.guided import GuidedMasking
from augsens.analysis.masking.masks import MaskSet
from augsens.analysis.single_class import jaccard_index, top_sensitive_classes
from augsens.augment.draws import single_draws
from augsens.errors import UserInputError

__all__ = ["MaskingRun", "run_masking"]

_CLASSIFIER_DIMS = ("factor", "unit")
_ORIGINAL = "original"


@dataclass
class MaskingRun:
    """Sums over images of one results folder's masking run."""

    masks: MaskSet
    inputs: list[str]
    label_source: str
    n_outputs: int
    n: np.ndarray  # [I] predictions counted per input (images x draws)
    plain: np.ndarray  # [I, 2] top-1 / top-5 hits without mask
    masked: np.ndarray  # [I, R, 2] top-1 / top-5 hits per mask row
    plain_jaccard: np.ndarray  # [I, G] Jaccard of unmasked predictions vs each map's top classes
    masked_jaccard: np.ndarray  # [I, R] Jaccard of masked predictions vs the row's own map's top classes
    classifier_maps: dict[str, xr.DataArray]  # measure -> [factor, unit]; empty without a classifier node
    categories: Sequence[str] | None


def run_masking(
    tree: xr.DataTree,
    masks: MaskSet,
    model: Any,
    images: Any,
    *,
    labels: Any,
    draws: int,
    seed: int,
    batch_size: int,
    configs_per_forward: int | None,
    k: int,
) -> MaskingRun:
    """Masked and unmasked predictions of ``model`` on ``images`` and their augmented copies, summed.

    Parameters
    ----------
    tree : xarray.DataTree
        The results the masks come from; its classifier node (``model.classifier``), if any, gives the
        top-sensitive classes for the single-class Jaccard indices.
    masks : MaskSet
        Masks built from ``tree``.
    model : augsens.models.LoadedModel
        See :func:`~augsens.analysis.masking.report.guided_masking_report`.
    images : augsens.data.ImageCache
        See :func:`~augsens.analysis.masking.report.guided_masking_report`.
    labels, draws, seed, batch_size, configs_per_forward, k
        As in :func:`~augsens.analysis.masking.report.guided_masking_report`.

    Returns
    -------
    MaskingRun
        Inputs: ``"original"``, then each factor of the masks that is an augmentation.
    """
    from augsens.augment import AUGMENTATIONS, apply  # the augment package may be absent at import time

    masking = GuidedMasking(model, masks)
    factors = list(dict.fromkeys(f for _, f in masks.labels))
    inputs = [_ORIGINAL] + [f for f in factors if f in AUGMENTATIONS]
    categories = getattr(model, "categories", None)
    classifier_maps = _classifier_maps(tree, getattr(model, "classifier", None), [m for m, _ in masks.labels])
    device = masking.device
    n_rows, n_labels = len(masks), len(masks.labels)
    targets = None
    if classifier_maps:
        # Candidate sets per (measure, factor); labels without a classifier map get -1 (never predicted).
        sets = np.full((n_labels, k), -1, dtype=np.int64)
        for g, (m, f) in enumerate(masks.labels):
            if m in classifier_maps:
                sets[g] = top_sensitive_classes(classifier_maps[m].sel(factor=[f]).values, k=k)[0]
        targets = torch.from_numpy(sets).to(device)
    run: MaskingRun | None = None
    true_labels = None
    for begin in range(0, len(images), batch_size):
        index = torch.arange(begin, min(begin + batch_size, len(images)))
        x = images.gather(index).to(device)
        reference = masking.unmasked(x)
        if run is None:
            n_outputs = reference.shape[-1]
            true_labels = _resolve_labels(labels, images, categories, n_outputs)
            top = min(max(k, 5), n_outputs)
            run = MaskingRun(
                masks=masks,
                inputs=inputs,
                label_source="labels" if true_labels is not None else "unmasked_top1",
                n_outputs=n_outputs,
                n=np.zeros(len(inputs)),
                plain=np.zeros((len(inputs), 2)),
                masked=np.zeros((len(inputs), n_rows, 2)),
                plain_jaccard=np.zeros((len(inputs), n_labels)),
                masked_jaccard=np.zeros((len(inputs), n_rows)),
                classifier_maps=classifier_maps,
                categories=categories,
            )
        if true_labels is not None:
            y = torch.as_tensor(true_labels[index.numpy()], device=device)
        else:
            y = reference.argmax(-1)
        for i, name in enumerate(inputs):
            if name == _ORIGINAL:
                xs, ys, plain = x, y, reference
            else:
                spec = AUGMENTATIONS[name]
                n_draws = draws if spec.params else 1
                params = _draw_params(spec, index.numpy(), n_draws, seed)
                xs = apply(
                    name,
                    x.repeat(n_draws, 1, 1, 1),
                    mode="clean",
                    validate=True,
                    **{p: v.to(device) for p, v in params.items()},
                )
                ys = y.repeat(n_draws)
                plain = masking.unmasked(xs)
            plain_top = plain.topk(top, dim=-1).indices  # [b, top]
            masked_top = masking.predict(
                xs, top_k=top, configs_per_forward=configs_per_forward
            )  # [R, b, top]
            run.n[i] += len(ys)
            run.plain[i] += _hits(plain_top, ys)
            run.masked[i] += _hits(masked_top, ys)
            if targets is not None:
                run.plain_jaccard[i] += (
                    jaccard_index(plain_top[:, None, :k], targets[None]).sum(0).double().cpu().numpy()
                )
                row_targets = targets.repeat_interleave(len(masks.configs), dim=0)  # [R, k]
                run.masked_jaccard[i] += (
                    jaccard_index(masked_top[..., :k], row_targets[:, None, :]).sum(1).double().cpu().numpy()
                )
    if run is None:  # unreachable: len(images) > 0 was checked
        raise ValueError("images is empty.")
    return run


def _hits(top: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Top-1 and top-5 hit counts; ``top [..., b, t]``, ``y [b]`` -> ``[..., 2]``."""
    match = top == y[:, None]
    return torch.stack([match[..., 0].sum(-1), match[..., :5].any(-1).sum(-1)], dim=-1).double().cpu().numpy()


def _classifier_maps(
    tree: xr.DataTree, classifier: str | None, measures: Sequence[str]
) -> dict[str, xr.DataArray]:
    if classifier is None or classifier not in tree.children:
        return {}
    ds = tree.children[classifier].to_dataset(inherit=False)
    return {m: ds[m] for m in dict.fromkeys(measures) if m in ds and ds[m].dims == _CLASSIFIER_DIMS}


def _resolve_labels(
    labels: Any, images: Any, categories: Sequence[str] | None, n_outputs: int
) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels != "auto":
            raise UserInputError(f"labels={labels!r} must be 'auto', None, or one class index per image.")
        raw, classes = getattr(images, "labels", None), getattr(images, "classes", None)
        if raw is None or classes is None:
            return None
        raw = np.asarray(torch.as_tensor(raw).cpu(), dtype=np.int64)
        classes = [str(c) for c in classes]
        if categories is not None and all(c in categories for c in classes):
            lookup = {c: i for i, c in enumerate(categories)}
            return np.asarray([lookup[c] for c in classes], dtype=np.int64)[raw]
        return raw if len(classes) == n_outputs else None
    out = np.asarray(labels, dtype=np.int64)
    if out.shape != (len(images),) or out.min() < 0 or out.max() >= n_outputs:
        raise UserInputError(
            f"labels must hold one class index in [0, {n_outputs}) per image ({len(images)} images), "
            f"got shape {out.shape!r}; pass labels='auto' or None to skip accuracy against labels."
        )
    return out


def _draw_params(spec: Any, index: np.ndarray, draws: int, seed: int) -> dict[str, torch.Tensor]:
    """Parameters of ``spec`` for images ``index``, ``draws`` each, flattened draw-major: ``[draws * b]``.

    Keyed like the contrast study (row ``image * draws + draw``), so both see the same augmented images.
    """
    rows = (np.asarray(index, dtype=np.int64)[None, :] * draws + np.arange(draws)[:, None]).ravel()
    return single_draws(spec, rows, seed)
