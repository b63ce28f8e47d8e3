"""Fingerprints of what a run reads — its images, its model weights and its augmentations' code — so that
a resumed run can tell that they are the ones it started with.

An interrupted run's state is only meaningful with the exact inputs that produced it: a resumed run on an
image folder that gained two files would silently mix samples of two image sets.  The fingerprints are
hashes of the *decoded* images (so they follow the pixels, whatever happens to file names, sizes or
modification times), of every tensor of the model's state dict and of each augmentation's source and
declaration (:attr:`augsens.augment.Augmentation.code_hash`), saved with the run's state and compared on
resume; :func:`compare` says in words what changed, naming the augmentation whose operation changed.
"""

from __future__ import annotations

import collections
import hashlib
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from augsens.augment import Augmentation
    from augsens.data import SampleCache

__all__ = ["fingerprint", "compare", "image_digests", "weights_digest", "augmentation_digests"]

_DIGEST = 8  # bytes per image digest: collisions are out of reach for any real image set
_CHUNK = 256  # images hashed per device -> host copy


def _bytes(t: torch.Tensor) -> bytes:
    # .view(uint8) reinterprets any dtype (bfloat16 included) without numpy, which lacks some of them
    return t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def image_digests(images: SampleCache) -> list[list[str]]:
    """``[[name, digest], ...]`` for every decoded image (or other input sample), in cache order."""
    out: list[list[str]] = []
    for lo in range(0, len(images), _CHUNK):
        chunk = images.samples[lo : lo + _CHUNK].to("cpu")
        for i, img in enumerate(chunk):
            digest = hashlib.blake2b(_bytes(img), digest_size=_DIGEST).hexdigest()
            out.append([images.names[lo + i], digest])
    return out


def weights_digest(module: torch.nn.Module) -> str:
    """One digest over every parameter and buffer of ``module`` (names, dtypes, shapes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in module.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(_bytes(t))
    return h.hexdigest()


def augmentation_digests(augmentations: Sequence[Augmentation]) -> dict[str, dict[str, str]]:
    """``{name: {"code": hash of fn's source, "declaration": hash of parameters, ranges, constants}}``."""
    return {a.name: {"code": a.code_hash, "declaration": a.declaration_hash()} for a in augmentations}


def fingerprint(
    images: SampleCache, module: torch.nn.Module | str, augmentations: Sequence[Augmentation] = ()
) -> dict[str, Any]:
    """The fingerprint saved with a run's state: ``{"images": [[name, digest], ...], "weights": digest,
    "augmentations": {name: {"code": .., "declaration": ..}}}``; ``module`` may be given by its
    :func:`weights_digest` (taken before the run folded its batch norms)."""
    weights = module if isinstance(module, str) else weights_digest(module)
    out: dict[str, Any] = {"images": image_digests(images), "weights": weights}
    if augmentations:
        out["augmentations"] = augmentation_digests(augmentations)
    return out


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def compare(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What changed between two fingerprints, in words (empty when nothing did)."""
    changes: list[str] = []
    before = {n: d for n, d in saved.get("images", [])}
    after = {n: d for n, d in now.get("images", [])}
    counts_before = collections.Counter(n for n, _ in saved.get("images", []))
    counts_after = collections.Counter(n for n, _ in now.get("images", []))
    added = sorted((counts_after - counts_before).elements())
    removed = sorted((counts_before - counts_after).elements())
    changed = sorted(n for n in before.keys() & after.keys() if before[n] != after[n])
    if added:
        changes.append(f"{_images(len(added))} added ({_names(added)})")
    if removed:
        changes.append(f"{_images(len(removed))} removed ({_names(removed)})")
    if changed:
        changes.append(f"{_images(len(changed))} changed ({_names(changed)})")
    if not changes and saved.get("images") != now.get("images"):
        changes.append("the images are in a different order")
    if saved.get("weights") != now.get("weights"):
        changes.append("the model weights changed")
    before_aug, after_aug = saved.get("augmentations"), now.get("augmentations")
    if before_aug is not None and after_aug is not None:  # states saved before augmentations were hashed
        for name, old in before_aug.items():
            new = after_aug.get(name)
            if new is None:
                continue  # a different list of augmentations is a config change, reported as such
            if old.get("code") != new.get("code"):
                changes.append(
                    f"the code of augmentation {name!r} changed (source hash {old.get('code')} -> "
                    f"{new.get('code')})"
                )
            elif old.get("declaration") != new.get("declaration"):
                changes.append(f"augmentation {name!r} changed its parameters, ranges or constants")
    return changes
