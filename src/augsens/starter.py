"""The example study configs shipped with the package: a commented starter and the paper presets.

``augsens init`` writes one of them where the user wants it.  They live in ``configs/`` of the source
tree, which the package reaches as ``augsens/configs`` (package data), so a checkout and an installed
wheel read the same files.

>>> "alexnet-set1-exp1.3" in presets()
True
>>> starter_text().startswith("# An augsens study")
True
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from augsens.errors import MissingFileError, UserInputError

__all__ = ["presets", "preset_text", "starter_text", "write_config"]

#: The commented starter study (the quick study of ``augsens demo``, every key explained).
STARTER = "study.toml"


def _configs() -> Traversable:
    return resources.files("augsens") / "configs"


def presets() -> list[str]:
    """Names of the paper presets (``configs/paper/NAME.toml``), sorted.

    Returns
    -------
    list of str
        E.g. ``"alexnet-set1-exp1.3"``: network, augmentation set, the paper's experiment number.
    """
    folder = _configs() / "paper"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def starter_text() -> str:
    """The commented starter config (TOML text)."""
    return (_configs() / STARTER).read_text(encoding="utf-8")


def preset_text(name: str) -> str:
    """The TOML text of paper preset ``name`` (see :func:`presets`).

    Raises
    ------
    UserInputError
        ``name`` is not a preset; the message lists close names.
    """
    import difflib

    known = presets()
    if name.removesuffix(".toml") not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UserInputError(f"no preset {name!r}.{hint} Presets: {', '.join(known)}")
    return (_configs() / "paper" / f"{name.removesuffix('.toml')}.toml").read_text(encoding="utf-8")


def write_config(path: str | Path, preset: str | None = None, *, overwrite: bool = False) -> Path:
    """Write the starter config (or a paper preset) to ``path``.

    Parameters
    ----------
    path : str or Path
        TOML file to write; its folder must exist.
    preset : str, optional
        A paper preset name (:func:`presets`); default: the commented starter.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UserInputError
        ``path`` exists (without ``overwrite``) or is a folder, or ``preset`` is unknown.
    MissingFileError
        The folder of ``path`` does not exist.
    """
    p = Path(path)
    if p.is_dir():
        raise UserInputError(
            f"{str(p)!r} is a folder: pass the config file to write, e.g. {str(p / STARTER)!r}"
        )
    if p.exists() and not overwrite:
        raise UserInputError(f"{str(p)!r} exists: choose another file name or pass --overwrite")
    if not p.parent.is_dir():
        raise MissingFileError(f"folder {str(p.parent)!r} does not exist: create it first")
    p.write_text(starter_text() if preset is None else preset_text(preset), encoding="utf-8")
    return p
