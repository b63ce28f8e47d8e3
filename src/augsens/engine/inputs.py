"""A study's inputs, loaded from its config sections: the network (or its HSV segment bank) and the images.

Every command that runs a network on images loads them here -- the treatment–control study and guided
masking as well as a study run from a config -- so the same ``[model]`` and ``[images]`` settings give the
same network and the same decoded images everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

import torch

from augsens.config import ImagesConfig, ModelConfig
from augsens.data import ImageCache, bundled_photos, image_folder
from augsens.errors import UserInputError
from augsens.models import LoadedModel, load

__all__ = ["load_model", "load_images", "image_counts"]


def load_model(
    config: ModelConfig,
    *,
    device: torch.device,
    mode: Literal["clean", "paper"] = "clean",
    input_shape: Sequence[int] | None = None,
) -> LoadedModel:
    """The network of a ``[model]`` section, or its HSV single-channel segments when it names some.

    Parameters
    ----------
    config : ModelConfig
        Name, weights, checkpoints, normalisation, categories and segments.
    device : torch.device
        Where the network runs.
    mode : {"clean", "paper"}
        The study's mode, used by the segments' colour conversion. Default: ``"clean"``.
    input_shape : sequence of int, optional
        One input's shape, when known (:func:`augsens.models.load`); default ``(3, 224, 224)``.

    Returns
    -------
    LoadedModel
        The network; with ``segments`` set, a :class:`~augsens.models.segments.SegmentBank` with one
        checkpoint per segment x HSV channel, taking ``[0, 1]`` images (no normalisation in front of it).

    Raises
    ------
    ValueError, KeyError, FileNotFoundError
        As :func:`augsens.models.load` and :func:`augsens.models.segments.load_segments`.
    """
    network = load(
        config.name,
        weights=config.weights,
        checkpoints=None if config.segments else config.checkpoints or None,
        mean=config.mean or None,
        std=config.std or None,
        categories=config.categories or None,
        device=device,
        input_shape=input_shape,
    )
    if not config.segments:
        return network
    from augsens.models.segments import HSV_CHANNELS, SegmentBank, example_segments, load_segments

    shipped = cast(Literal["alexnet", "resnet18"], config.segments)  # used only when it is one of the two
    path = example_segments(shipped) if config.segments in ("alexnet", "resnet18") else config.segments
    bank = SegmentBank(
        network.module,
        load_segments(path),
        channels=config.segment_channels or HSV_CHANNELS,
        mode=mode,
        mean=network.mean,
        std=network.std,
    )
    # the segments convert [0, 1] RGB to HSV themselves: no normalisation in front of them
    return load(bank, checkpoints=config.checkpoints or None, mean=(0, 0, 0), std=(1, 1, 1), device=device)


def load_images(config: ImagesConfig, *, device: torch.device) -> ImageCache:
    """The decoded images of an ``[images]`` section: the bundled photos or an image folder (two
    folders when ``partition2`` is set, the second one the second partition).

    Parameters
    ----------
    config : ImagesConfig
        Source, second partition, images per class, subset seed, the strictness about bad files and the
        image side (``size``; ``"keep"``: the images' own size).
    device : torch.device
        Where the decoded uint8 images are kept.

    Returns
    -------
    ImageCache

    Raises
    ------
    ValueError
        ``partition2`` with the bundled photos; see also :func:`augsens.data.image_folder`.
    FileNotFoundError
        A folder that does not exist.
    """
    if config.source == "bundled":
        if config.partition2:
            raise UserInputError("[images] partition2 needs a folder source, not 'bundled'")
        return bundled_photos(device=device, size=config.side)
    kw: dict[str, Any] = dict(
        per_class=config.per_class or None,
        seed=config.seed,
        strict=config.strict,
        device=device,
        size=config.side,
    )
    first = image_folder(config.source, **kw)
    if not config.partition2:
        return first
    return ImageCache.concatenate([first, image_folder(config.partition2, **kw)])


def image_counts(config: ImagesConfig) -> list[list[int]] | None:
    """Images per class of each partition that :func:`load_images` would decode, from the folder names
    alone; ``None`` for the bundled photos (a few, always small)."""
    from augsens.data.sources import count_images

    if config.source == "bundled":
        return None
    kw: dict[str, Any] = dict(per_class=config.per_class or None, seed=config.seed)
    folders = [config.source] + ([config.partition2] if config.partition2 else [])
    return [count_images(folder, **kw) for folder in folders]
