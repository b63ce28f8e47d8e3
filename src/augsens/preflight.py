"""Checks that run before anything heavy is loaded: the output folder and the paths a config names.

They need neither torch nor the images, so a wrong ``--out``, a missing folder or a finished run answers
at once — not after the model is built or, worse, after every forward pass was spent.  The model itself
is checked by a dry forward on real batches when it is loaded
(:meth:`augsens.models.LoadedModel.output_shapes`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from augsens.config import StudyConfig
from augsens.errors import MissingFileError, UserInputError
from augsens.wording import option

__all__ = [
    "prepare_out",
    "check_out_path",
    "check_out_outside_images",
    "check_paths",
    "OutFolderInUseError",
    "STATE_DIR",
    "STATE_NAME",
    "RESULTS_NAME",
]

STATE_DIR = "state"
STATE_NAME = "state.pt"
RESULTS_NAME = "results.zarr"


class OutFolderInUseError(UserInputError, FileExistsError):
    """The output folder holds another run (its state or its results); the message says how to proceed."""


def _through_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_out_path(out: str | os.PathLike) -> None:
    """Refuse an output folder path that is empty, a file, or passes through a file.

    Raises
    ------
    UserInputError
        The message names the path and what to choose instead.
    """
    if os.fspath(out) == "":
        raise UserInputError(
            f"{option('out', '')} is empty: name the results folder (e.g. {option('out', 'results')}; "
            "'.' for the current folder)"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(
            f"{option('out', '')} {str(out)!r} is a file, not a folder: choose a folder path (it is created)"
        )
    blocker = _through_file(out)
    if blocker is not None:
        raise UserInputError(
            f"{option('out', '')} {str(out)!r} passes through {str(blocker)!r}, which is a file, not a "
            "folder: choose another path"
        )


def prepare_out(out: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> bool:
    """Check the results folder ``out`` for a run, and create it.

    Parameters
    ----------
    out : path
        The results folder.
    resume : bool
        The run continues the unfinished run saved in ``out``.
    overwrite : bool
        Replace what ``out`` holds: a finished run's results are replaced when the new ones are written
        (so they survive until then); an unfinished run's state is discarded now.

    Returns
    -------
    bool
        Whether the folder was created by this call (a caller that fails early may remove it again).

    Raises
    ------
    UserInputError
        ``out`` is a file, passes through one, cannot be created or written; it holds another run's results
        or state (without ``overwrite``); ``resume`` with nothing to resume, or on a finished run; both
        ``resume`` and ``overwrite``.
    """
    out = Path(out)
    if resume and overwrite:
        raise UserInputError(
            f"{option('resume')} continues the run in {option('out', '')} and {option('overwrite')} "
            "discards it: pass one of them, not both"
        )
    check_out_path(out)
    state = out / STATE_DIR / STATE_NAME
    results = out / RESULTS_NAME
    if resume:
        if not state.is_file():
            if results.is_dir():
                raise UserInputError(
                    f"this run is finished: its results are in {str(results)!r} and there is nothing to "
                    f"resume. Open them (augsens report), or pass {option('overwrite')} instead of "
                    f"{option('resume')} to run it again"
                )
            raise MissingFileError(
                f"{option('resume')}: no saved state at {str(state)!r}; run without it to start the study"
            )
    elif state.exists() and not overwrite:
        raise OutFolderInUseError(
            f"{str(out)!r} holds the state of an unfinished run: pass {option('resume')} to continue it, "
            f"{option('overwrite')} to discard it, or choose another {option('out', '')}"
        )
    elif results.exists() and not overwrite:
        raise OutFolderInUseError(
            f"{str(out)!r} already holds results ({RESULTS_NAME}) of an earlier run: pass "
            f"{option('overwrite')} to replace them (they are kept until the new ones are written), or "
            f"choose another {option('out', '')}"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserInputError(
            f"cannot write the results to {option('out', '')} {str(out)!r}: {exc.strerror or exc}. Choose "
            "a folder you can write to"
        ) from exc
    if overwrite and not resume and state.parent.exists():
        shutil.rmtree(state.parent)
    return created


def _folder(path: str, key: str) -> None:
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{key} = {path!r}: the image folder does not exist")
    if not p.is_dir():
        raise MissingFileError(
            f"{key} = {path!r} is a file, not a folder: name a folder of class sub-folders"
        )


def check_paths(config: StudyConfig) -> None:
    """Check the files and folders ``config`` names (images, weights, segments) without reading them.

    Raises
    ------
    MissingFileError
        One of them does not exist (or is a file where a folder is needed); the message names the key.
    """
    images, model = config.images, config.model
    if images.source != "bundled":
        _folder(images.source, "[images] source")
    if images.partition2:
        if images.source == "bundled":
            raise UserInputError("[images] partition2 needs a folder source, not 'bundled'")
        _folder(images.partition2, "[images] partition2")
    w = model.weights
    if (os.sep in w or "/" in w or Path(w).suffix) and not Path(w).is_file():
        raise MissingFileError(
            f"[model] weights = {w!r}: file not found. Pass the path of a state-dict file, or 'default' / "
            "'random'"
        )
    if (
        model.segments
        and model.segments not in ("alexnet", "resnet18")
        and not Path(model.segments).is_file()
    ):
        raise MissingFileError(
            f"[model] segments = {model.segments!r}: no such file. Pass a segment JSON file, or 'alexnet' / "
            "'resnet18' for the shipped examples"
        )


def check_out_outside_images(out: str | os.PathLike, config: StudyConfig, flag: str = "--out") -> None:
    """Refuse a results folder inside an image folder of ``config``.

    The folder would be read as a class of images by the next run (or, created empty before the images
    are read, by this one).

    Parameters
    ----------
    out : path
        The results folder.
    config : StudyConfig
        The study, whose ``[images]`` source and ``partition2`` are checked.
    flag : str
        How the caller names the results folder in the message (``"--out"`` or ``"out="``).

    Raises
    ------
    UserInputError
        ``out`` is, or lies inside, one of the image folders.
    """
    where = Path(out).resolve()
    for key in ("source", "partition2"):
        folder = getattr(config.images, key)
        if not folder or folder == "bundled":
            continue
        root = Path(folder).resolve()
        if where == root or root in where.parents:
            raise UserInputError(
                f"{flag} {str(out)!r} lies inside the image folder [images] {key} = {folder!r}: its files "
                f"would be read as a class of images; choose {flag} outside {folder!r}"
            )
