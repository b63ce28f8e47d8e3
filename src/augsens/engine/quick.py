"""A whole augmentation study in one call: :func:`study` (``ag.study``), and :func:`run_study`, the
path every study takes (the TOML config, ``augsens run`` and ``ag.study``).

Every key of the study config (:mod:`augsens.config`) is a keyword of :func:`study`: the plain key name
(``n=256``, ``batch_size=32``, ``weights="random"``, ``per_class=10``) or, always, ``<section>_<key>``
(``study_seed=1``, ``images_seed=3``).  A plain name that two sections share goes to the first of
``study``, ``run``, ``model``, ``images`` (``seed`` is the study's seed).  The keywords are gathered into
the same nested table a TOML file gives and validated by the same code, so the messages are the same.

Examples
--------
>>> import torch, augsens as ag
>>> tree = ag.study(
...     "augsens.testing:tiny_cnn", torch.rand(4, 3, 224, 224), augmentations=["hflip", "grayscale"],
...     n=8, replicates=2, checkpoints=["act", "fc"], device="cpu", progress=False,
... )
>>> tree["act"].dataset["ST_checkpoint"].dims, list(tree.children)
(('factor',), ['act', 'fc'])
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_type_hints

import numpy as np
import torch
import xarray as xr
from torch import nn

from augsens.augment.protocol import Augmentation
from augsens.config import ConfigError, StudyConfig, StudyKind
from augsens.core.kinds import KINDS
from augsens.data import ImageCache, SampleCache
from augsens.errors import UserInputError
from augsens.models import LoadedModel

__all__ = ["study", "run_study", "config_keywords"]

# sections that win a plain keyword they share with another section (``seed`` -> [study] seed)
_PRECEDENCE = ("study", "run", "model", "images")
# keys filled by the positional arguments of study()
_POSITIONAL = {("model", "name"): "model", ("images", "source"): "images"}


def config_keywords() -> dict[str, tuple[str, str]]:
    """Every keyword :func:`study` accepts for a config key: ``{keyword: (section, key)}``.

    Walks the :class:`~augsens.config.StudyConfig` schema, so keys added there are keywords at once.

    Examples
    --------
    >>> kw = config_keywords()
    >>> kw["n"], kw["seed"], kw["images_seed"], kw["batch_size"]
    (('study', 'n'), ('study', 'seed'), ('images', 'seed'), ('run', 'batch_size'))
    """
    sections = {f.name: get_type_hints(StudyConfig)[f.name] for f in dataclasses.fields(StudyConfig)}
    order = [s for s in _PRECEDENCE if s in sections] + [s for s in sections if s not in _PRECEDENCE]
    plain: dict[str, tuple[str, str]] = {}
    qualified: dict[str, tuple[str, str]] = {}
    for section in order:
        if not dataclasses.is_dataclass(sections[section]):  # [augment]: the ranges= argument of study()
            continue
        for f in dataclasses.fields(sections[section]):
            if (section, f.name) in _POSITIONAL:
                continue
            qualified[f"{section}_{f.name}"] = (section, f.name)
            plain.setdefault(f.name, (section, f.name))
    return {**qualified, **plain}


def _plain(value: Any) -> Any:
    """Python values as TOML would give them: tuples as lists, paths as strings, numpy scalars as numbers."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _config(
    model_name: str, images_source: str, options: Mapping[str, Any], ranges: Mapping[str, Any] | None = None
) -> StudyConfig:
    from augsens.augment.ranges import to_config

    keywords = config_keywords()
    data: dict[str, dict[str, Any]] = {"model": {"name": model_name}, "images": {"source": images_source}}
    if ranges:
        data["augment"] = to_config(ranges)
    for key, value in options.items():
        if key in ("name", "model_name", "source", "images_source"):
            which = "model" if "name" in key else "images"
            raise ConfigError(f"study(): pass the {which} as the {which!r} argument, not as {key}=")
        if key not in keywords:
            close = difflib.get_close_matches(key, list(keywords), n=3)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            plain = sorted(k for k, (section, name) in keywords.items() if k == name)
            raise ConfigError(
                f"study(): unknown option {key!r}.{hint} Options are the study config's keys "
                f"({', '.join(plain)}), each also as <section>_<key>"
            )
        section, name = keywords[key]
        if (section, name) == ("images", "size") and value is None:
            value = "keep"  # Python's None for TOML's "keep": the images keep their own size
        data.setdefault(section, {})[name] = _plain(value)
    return StudyConfig.from_dict(data, source="study()")


def _label(obj: Any) -> str:
    """A name for an in-memory object in the config's provenance (it cannot be reloaded from there)."""
    if hasattr(obj, "shape"):
        return f"<{type(obj).__name__} {list(obj.shape)}>"
    if isinstance(obj, Sequence):
        return f"<list of {len(obj)} images>"
    return f"<{type(obj).__name__}>"


def study(
    model: str | nn.Module | LoadedModel,
    images: Any = "bundled",
    augmentations: str | Sequence[str | Augmentation] = "set1",
    kind: StudyKind = "sobol",
    n: int = 1024,
    checkpoints: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    device: str = "auto",
    *,
    ranges: Mapping[str, Any] | None = None,
    resume: bool | Literal["auto"] = "auto",
    overwrite: bool = False,
    progress: bool = True,
    ray: str | None = None,
    workers: int | None = None,
    shards: int | None = None,
    **options: Any,
) -> xr.DataTree:
    """Run an augmentation study and return its results tree.

    Parameters
    ----------
    model : str, torch.nn.Module or LoadedModel
        A registry name (``"efficientnet_lite0"``, ``"resnet18"``, ... see ``augsens info``),
        ``"package.module:factory"``, or any ``nn.Module`` taking ``[B, 3, 224, 224]`` (or the images'
        ``size``; its input normalisation via ``mean=`` / ``std=``; default ImageNet's, or 0 and 1 for
        inputs that are not images).  A module is put in eval mode in place.
    images : default "bundled"
        ``"bundled"`` (the photos shipped with scikit-image / scikit-learn), a folder (class sub-folders,
        or images directly in it), a list of paths or PIL images, a uint8 or float tensor ``[N, 3, H, W]``,
        a numpy array, a torch ``Dataset`` returning images or ``(image, label)``, or an ``ImageCache``
        (see :func:`augsens.data.inputs.as_image_cache`).  Images become ``size`` x ``size`` (the
        ``size=`` option, default 224; ``None`` keeps their size).  Inputs that are not images (a tensor
        ``[N, C, T]`` of 1-D signals, ...): a :class:`~augsens.data.SampleCache` from
        :func:`augsens.as_samples`, studied under augmentations that take such inputs
        (:mod:`augsens.augment.signals`; docs/inputs.md).
    augmentations : str or sequence of str or Augmentation, default "set1"
        ``"set1"``, ``"set2"``, ``"corruptions"`` (ImageNet-C's, docs/corruptions.md) or a list of
        augmentation names (``augsens info`` lists them),
        ``"package.module:name"`` references and :class:`~augsens.augment.Augmentation` objects
        (docs/augmentations.md).  An object defined in an importable module is recorded by its reference;
        one defined in ``__main__`` or a notebook is registered in this process under its name.
    kind : str, default "sobol"
        A study kind of :data:`augsens.core.kinds.KINDS` (``augsens info`` lists them with a summary):
        ``"sobol"``, ``"shapley"``, ``"shapley-song"``, ``"moments"``, ``"morris"`` or ``"contrast"``.
        Each reads its own keys besides the common ones (:attr:`augsens.core.kinds.Kind.reads`), e.g.
        ``morris_levels`` for ``"morris"`` (elementary effects ``mu``, ``mu_star``, ``sigma`` from ``n``
        trajectories of ``D + 1`` forwards), or ``draws``, ``pairing``, ``n_images``,
        ``block_elements``, ``swap_effect_names`` for ``"contrast"`` (each augmentation alone against
        the original image; :func:`augsens.engine.contrast.contrast_study`), which does not use ``n``.
    n : int, default 1024
        Base samples (a power of 2 for the Sobol' design).
    checkpoints : sequence of str, optional
        Modules to analyse (default: the model's list).  A module returning a tuple or dict is named with
        its element: ``"blocks.3[0]"``, ``"backbone['out']"``.
    out : path, optional
        ``None``: results stay in memory.  A folder: results are written to ``out/results.zarr`` and the
        run can be resumed after an interruption.
    device : str, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    ranges : mapping, optional
        Other ranges or distributions for parameters: ``{"hue": (-0.1, 0.1), "erasing.scale": (0.05, 0.2),
        "rotation": scipy.stats.norm(0, 3)}`` (:mod:`augsens.augment.ranges`; the TOML form is
        ``[augment.hue] low = -0.1 high = 0.1``).  Parameters not named keep their declared ranges.
    resume : bool or "auto", default "auto"
        Continue the interrupted run saved in ``out`` (``"auto"``: when there is one).
    overwrite : bool, default False
        Replace results of a different study already in ``out`` (otherwise that is refused).
    progress : bool, default True
        Show a progress bar (in a terminal or a Jupyter notebook).
    ray : str, optional
        Run on a Ray cluster (:func:`augsens.engine.distributed.run_distributed`; ``augsens[ray]``):
        ``"local"`` (a cluster started on this machine), ``"auto"`` (the cluster this machine belongs to) or
        an address such as ``"ray://head:10001"``.  Workers build the study from its config, so ``model``
        is a registry name or ``"package.module:factory"``, ``images`` is ``"bundled"`` or a folder that
        every worker can read, and ``out`` is required.
    workers, shards : int, optional
        Ray workers (default: every GPU, else every CPU) and shards (default: 4 per worker).
    **options
        Any other key of the study config, by its name (``replicates=4``, ``batch_size=32``,
        ``weights="random"``, ``mode="paper"``, a precision target where the config has one) or as
        ``<section>_<key>`` (module docstring).

    Returns
    -------
    xarray.DataTree
        The same tree :func:`augsens.open_results` reads: one node per checkpoint (``S1``, ``ST``,
        ``*_conf``, ``mean``, ``var``, aggregates ``*_checkpoint``, ``*_channel``, ``*_token``,
        ``*_time``) and the
        provenance in the root attributes (``depth``: relative depth of each checkpoint).  A contrast
        study's nodes hold its tests and effect sizes per augmentation (``p_value``, ``p_value_by``,
        ``rank_biserial``, ``point_biserial``...).

    Raises
    ------
    UserInputError
        A bad option value or name (the message names it and what is allowed), images of the wrong shape,
        dtype or range, an empty folder, an unknown checkpoint, a checkpoint whose module returns a tuple or
        dict without an element named.
    FileNotFoundError
        A folder, image or weights file that does not exist.
    """
    given = dict(options)
    if not isinstance(augmentations, str) and augmentations is not None:
        from augsens.augment.registry import reference

        augmentations = [reference(a) if isinstance(a, Augmentation) else a for a in augmentations]
    for key, value in (
        ("augmentations", augmentations),
        ("kind", kind),
        ("n", n),
        ("device", device),
        ("checkpoints", checkpoints),
    ):
        if value is not None:
            given[key] = value
    loaded: LoadedModel | None = None
    if isinstance(model, str):
        model_name = model
    elif isinstance(model, nn.Module | LoadedModel):
        model_name = model.name if isinstance(model, LoadedModel) else type(model).__name__
    else:
        raise UserInputError(
            f"model of type {type(model).__name__} is not supported: give a registry name (see `augsens "
            "info`), 'package.module:factory' or a torch.nn.Module"
        )
    cache, source = _images(images)
    config = _config(model_name, source, given, ranges)
    if out is not None:
        from augsens.preflight import check_out_outside_images

        check_out_outside_images(out, config, flag="out=")
    if ray is not None:
        return _on_ray(
            config,
            model,
            cache,
            out,
            ray,
            workers,
            shards,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        )
    from augsens.engine.study import resolve_device

    dev = resolve_device(config.run.device)
    if cache is not None and not isinstance(cache, SampleCache):
        from augsens.data.inputs import as_image_cache

        ic = config.images
        cache = as_image_cache(
            cache,
            device=dev,
            per_class=ic.per_class or None,
            seed=ic.seed,
            strict=ic.strict,
            progress=progress,
            size=ic.side,
        )
    if isinstance(cache, SampleCache) and not isinstance(cache, ImageCache):
        sized = [k for k in ("size", "images_size") if k in options]
        if sized:  # resizing and cropping are for images: other inputs are studied as they are given
            raise UserInputError(
                f"{sized[0]}= resizes images, but these inputs are not images ({cache!r}): give them at the "
                "shape the network takes and drop size="
            )
    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, nn.Module):
        from augsens.models import load

        mc = config.model
        loaded = load(
            model,
            weights=mc.weights,
            checkpoints=mc.checkpoints or None,
            mean=mc.mean or None,
            std=mc.std or None,
            categories=mc.categories or None,
            device=dev,
            input_shape=cache.sample_shape if cache is not None else None,
        )
    return run_study(
        config, out, model=loaded, images=cache, resume=resume, overwrite=overwrite, progress=progress
    )


def _on_ray(
    config: StudyConfig,
    model: Any,
    cache: Any,
    out: str | os.PathLike | None,
    address: str,
    workers: int | None,
    shards: int | None,
    *,
    resume: bool | Literal["auto"],
    overwrite: bool,
    progress: bool,
) -> xr.DataTree:
    """``study(..., ray=address)``: the checks of ``augsens run --ray``, then the distributed run."""
    if not isinstance(model, str) or cache is not None:
        raise UserInputError(
            "a Ray run rebuilds the study on every worker from its config: give the model as a registry "
            "name or 'package.module:factory' and the images as 'bundled' or a folder (not objects in memory)"
        )
    if out is None:
        raise UserInputError("a Ray run writes its results to a folder: pass out=...")
    if resume is True:
        raise UserInputError("resume=True cannot be combined with ray=... (failed shards are retried)")
    kind = KINDS[config.study.kind]
    if not kind.shards:
        raise UserInputError(f'kind="{kind.name}" runs in one process ({kind.one_process}): drop ray=...')
    from augsens.engine.distributed import run_distributed
    from augsens.preflight import check_paths, prepare_out

    check_paths(config)
    prepare_out(Path(out), resume=False, overwrite=overwrite)
    return run_distributed(config, out, address=address, workers=workers, shards=shards, progress=progress)


def _images(images: Any) -> tuple[Any, str]:
    """(what to decode here, or None when the config's own loader reads it; the config's source)."""
    if isinstance(images, str) and images == "bundled":
        return None, "bundled"
    if isinstance(images, str | os.PathLike):
        from augsens.data.inputs import folder_layout

        path = Path(images)
        if path.is_dir() and folder_layout(path) == "classes":
            return None, os.fspath(path)  # a class-folder tree: read as a TOML source would be
        return images, os.fspath(path)
    return images, _label(images)


def run_study(
    config: StudyConfig,
    out: str | os.PathLike | None = None,
    *,
    model: LoadedModel | None = None,
    images: SampleCache | None = None,
    resume: bool | Literal["auto"] = False,
    overwrite: bool = False,
    progress: bool = True,
) -> xr.DataTree:
    """Run a validated config (model and images loaded from it unless given) and return the results tree.

    ``out=None`` runs in a temporary folder and returns the tree loaded into memory; otherwise results
    are written to ``out/results.zarr`` and read back, so both give exactly what
    :func:`augsens.open_results` gives.  ``resume="auto"`` resumes when ``out`` holds a saved state.
    A sensitivity kind (:attr:`augsens.core.kinds.Kind.sensitivity`) runs the sensitivity engine
    :class:`augsens.engine.study.Study`; ``kind = "contrast"`` runs
    :func:`augsens.engine.contrast.contrast_study`, which keeps no state to resume.
    """
    if out is not None:
        from augsens.outlock import own_out

        with own_out(out):  # held from before the model loads to the results read back
            return _run_study(
                config,
                Path(out),
                model=model,
                images=images,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
            )
    return _run_study(
        config, None, model=model, images=images, resume=resume, overwrite=overwrite, progress=progress
    )


def _run_study(
    config: StudyConfig,
    out: Path | None,
    *,
    model: LoadedModel | None,
    images: SampleCache | None,
    resume: bool | Literal["auto"],
    overwrite: bool,
    progress: bool,
) -> xr.DataTree:
    from augsens.engine.study import Study
    from augsens.interrupts import StudyInterrupted
    from augsens.preflight import STATE_DIR, STATE_NAME
    from augsens.results import open_results

    if not KINDS[config.study.kind].sensitivity:
        return _run_contrast(config, out, model=model, images=images, resume=resume, overwrite=overwrite)
    engine = Study(config, model=model, images=images, progress=progress)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="augsens-") as tmp:
            try:
                engine.run(tmp)
            except StudyInterrupted:
                raise KeyboardInterrupt(
                    "study interrupted; its results were kept in memory only, so nothing is saved: pass "
                    "out=FOLDER to make a run resumable"
                ) from None
            return open_results(tmp).load()
    folder = Path(out)
    if resume == "auto":
        resume = (folder / STATE_DIR / STATE_NAME).is_file()
    engine.run(folder, resume=bool(resume), overwrite=overwrite)
    return open_results(folder)


def _run_contrast(
    config: StudyConfig,
    out: str | os.PathLike | None,
    *,
    model: LoadedModel | None,
    images: SampleCache | None,
    resume: bool | Literal["auto"],
    overwrite: bool,
) -> xr.DataTree:
    """The treatment–control study of a ``kind = "contrast"`` config, written and read back as
    :func:`run_study` does for the other kinds."""
    from augsens.engine.contrast import contrast_study
    from augsens.engine.factors import resolve_specs
    from augsens.engine.inputs import load_images, load_model
    from augsens.engine.study import resolve_device
    from augsens.preflight import prepare_out
    from augsens.results import open_results

    if resume is True:
        raise UserInputError(
            'a kind = "contrast" study keeps no state to resume: run it again without resume (with '
            "overwrite to replace results it left in the folder)"
        )
    if out is not None:  # the same checks of the folder as a Study's, before anything is loaded
        prepare_out(out, overwrite=overwrite)
    sc = config.study
    # a bad name or range answers before the model loads
    augmentations = resolve_specs(sc.augmentations, config.augment)
    device = resolve_device(config.run.device)
    if model is None:
        shape = images.sample_shape if images is not None else None  # inputs given may not be images
        model = load_model(config.model, device=device, mode=sc.mode, input_shape=shape)
    if images is None:
        images = load_images(config.images, device=device)
    # the protocol's checks on the study's own images, before any forward (as a Study does)
    from augsens.augment.checks import PROBE_SIZE, check_augmentations

    probe = images.to(device).gather(torch.arange(PROBE_SIZE) % len(images))
    check_augmentations(augmentations, probe, mode=sc.mode)

    def run(folder: Path) -> None:
        contrast_study(
            model,
            images,
            augmentations=augmentations,
            draws=sc.draws,
            n_images=sc.n_images or None,
            checkpoints=config.model.checkpoints or None,
            seed=sc.seed,
            pairing=None if sc.pairing == "default" else sc.pairing,
            block_elements=sc.block_elements or None,
            batch_size=config.run.batch_size,
            mode=sc.mode,
            swap_effect_names=sc.swap_effect_names,
            out=folder,
        )

    if out is None:
        with tempfile.TemporaryDirectory(prefix="augsens-") as tmp:
            run(Path(tmp))
            return open_results(tmp).load()
    run(Path(out))
    return open_results(Path(out))
