"""Study configuration: a TOML file with four tables, validated key by key.

.. code-block:: toml

    [model]
    name = "efficientnet_lite0"      # or alexnet, vgg11, resnet18, *_places365, "pkg.module:factory"
    weights = "default"              # "imagenet", "random" or a path to a state dict
    checkpoints = []                 # module names; empty = the model's default list
    segments = ""                    # HSV single-channel segments: a JSON file, "alexnet" or "resnet18"

    [images]
    source = "bundled"               # or a folder with class sub-folders (ImageFolder layout)
    partition2 = ""                  # optional second folder (e.g. ILSVRC val): adds a partition factor
    per_class = 0                    # class-balanced subset: k images per class (0 = all)
    strict = false                   # corrupt files: skip and count (false) or fail (true)

    [study]
    kind = "sobol"                   # sobol | shapley | shapley-song | moments | contrast
    augmentations = "set1"           # set1 | set2 | list of names
    n = 1024                         # base samples (a power of 2 for the Sobol' design)
    seed = 0
    mode = "clean"                   # clean | paper
    precision = 0.0                  # target half-width (e.g. 0.02): add rounds until reached; 0 = run n
    max_n = 0                        # budget of a precision run: n x 2^k base samples (0 = 16 n)
    time_limit = 0.0                 # seconds; no round is started that would end later (0 = none)
    # kind = "contrast" (each augmentation alone against the original image) instead of n ... time_limit:
    draws = 10                       # parameter draws per image (1 for an augmentation without parameters)
    pairing = "default"              # draw | image; default: image (clean mode), draw (paper mode)
    n_images = 0                     # the first n_images images (0 = all)
    block_elements = 0               # activation elements ranked per pass over the images (0 = fit 512 MiB)
    swap_effect_names = false        # paper mode: the authors' swapped effect-size names

    [run]
    batch_size = 64
    device = "auto"                  # auto | cpu | cuda | cuda:1 ...
    dtype = "float32"                # float32 | bfloat16 (autocast) | auto (bf16 + channels_last on a CPU
                                     #   with native bf16 -- AMX or AVX512-BF16 --, else float32)

Every key has a default (:class:`StudyConfig`); unknown keys and wrong types fail with one message
naming the key, the expected type or allowed values, and close matches.  The contrast study and the
sensitivity studies (sobol, shapley, shapley-song, moments) each have keys the other does not use
(:data:`CONTRAST_ONLY`, :data:`SENSITIVITY_ONLY`); such a key set to anything but its default is refused,
so a setting never goes silently unused.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from augsens.errors import MissingFileError, UserInputError

__all__ = [
    "ConfigError",
    "ModelConfig",
    "ImagesConfig",
    "StudySection",
    "RunConfig",
    "StudyConfig",
    "load_config",
    "STUDY_KINDS",
    "CONTRAST_ONLY",
    "SENSITIVITY_ONLY",
]

STUDY_KINDS = ("sobol", "shapley", "shapley-song", "moments", "contrast")

#: Keys (by section) only the contrast study reads.
CONTRAST_ONLY = {"study": ("draws", "pairing", "n_images", "block_elements", "swap_effect_names")}
#: Keys (by section) only the sensitivity studies read: their design, estimator, factors, precision
#: target, resumable state and mixed precision, and the partition factor.
SENSITIVITY_ONLY = {
    "study": (
        "n",
        "switches",
        "switch_p",
        "order",
        "design",
        "second_order",
        "sobol_method",
        "replicates",
        "shapley_method",
        "song_permutations",
        "song_outer",
        "song_inner",
        "precision",
        "max_n",
        "time_limit",
    ),
    "images": ("partition2",),
    "run": ("dtype", "state_dtype", "channels_last", "checkpoint_every"),
}


class ConfigError(UserInputError):
    """A configuration value or key is invalid; the message names it and what is allowed."""


@dataclass
class ModelConfig:
    name: str = "efficientnet_lite0"
    weights: str = "default"
    checkpoints: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    categories: str = ""
    # single-channel HSV segments: a segment JSON file, or "alexnet" / "resnet18" for the shipped example
    segments: str = ""
    segment_channels: list[str] = field(default_factory=list)  # default: hue, saturation, value


@dataclass
class ImagesConfig:
    source: str = "bundled"
    partition2: str = ""
    per_class: int = 0
    seed: int = 0
    strict: bool = False


@dataclass
class StudySection:
    kind: Literal["sobol", "shapley", "shapley-song", "moments", "contrast"] = "sobol"
    augmentations: str | list[str] = "set1"
    n: int = 1024
    seed: int = 0
    mode: Literal["clean", "paper"] = "clean"
    switches: Literal["default", "all", "nonparametric", "none"] = "default"
    switch_p: float = 0.5
    order: bool = True
    design: Literal["sobol", "sobol-lms", "iid"] = "sobol"
    second_order: bool = False
    sobol_method: Literal["saltelli_2010", "janon_2014"] = "saltelli_2010"
    # independent scrambles of the design for confidence half-widths (sobol, shapley); memory x replicates.
    # 4 give the default n 256 points per replicate, where the design beats i.i.d. (docs/statistics.md)
    replicates: int = 4
    shapley_method: Literal["exact", "permutation"] = "exact"
    # shapley-song (the authors' double loop): permutations x outer x inner samples
    song_permutations: int = 8
    song_outer: int = 4
    song_inner: int = 4
    # precision target (augsens.core.precision): rounds double n until the half-widths' summary is <= it
    precision: float = 0.0
    max_n: int = 0  # 0: 16 n
    time_limit: float = 0.0  # seconds, 0: none
    # kind "contrast" (augsens.engine.contrast): each augmentation alone against the original image
    draws: int = 10  # parameter draws per image (an augmentation without parameters gets one)
    # "draw": one pair per draw (the authors'); "image": one per image, its draws averaged (independent
    # pairs); "default": image in clean mode, draw in paper mode
    pairing: Literal["default", "draw", "image"] = "default"
    n_images: int = 0  # the first n_images images; 0: all
    block_elements: int = 0  # elements ranked per pass over the images; 0: as many as fit 512 MiB
    swap_effect_names: bool = False  # paper mode: the authors' effect-size names, swapped


@dataclass
class RunConfig:
    batch_size: int = 64
    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    # mixed: float64 totals, float32 per-batch blocks for float32/bf16 activations (core.estimate._base)
    state_dtype: Literal["mixed", "float64", "float32"] = "mixed"
    channels_last: bool = False
    checkpoint_every: float = 120.0


@dataclass
class StudyConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    study: StudySection = field(default_factory=StudySection)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> StudyConfig:
        """Validate a nested mapping (e.g. parsed TOML) into a config; raises :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a table of sections, got {type(data).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        _unknown(data, sections, source, "section")
        built = {}
        for name in sections:
            section_cls = get_type_hints(cls)[name]
            value = data.get(name, {})
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{name}] must be a table, got {value!r}")
            built[name] = _build(section_cls, value, f"{source}: [{name}]")
        cfg = cls(**built)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        """Cross-field checks (ranges); raises :class:`ConfigError`."""
        s, r = self.study, self.run
        self._check_kind_keys(source)
        if s.n < 1:
            raise ConfigError(f"{source}: [study] n must be a positive integer, got {s.n!r}")
        if s.design == "sobol" and s.kind != "shapley-song" and s.n & (s.n - 1):
            lo = 1 << (s.n.bit_length() - 1)
            raise ConfigError(
                f"{source}: [study] n = {s.n} is not a power of 2, which the Sobol' design needs to keep "
                f'its balance properties; use n = {lo} or {2 * lo}, or design = "iid"'
            )
        if s.replicates < 1 or s.n % s.replicates:
            raise ConfigError(
                f"{source}: [study] replicates = {s.replicates} must be a positive divisor of n = {s.n}"
            )
        if s.precision:
            self._check_precision(source)
        elif s.max_n or s.time_limit:
            raise ConfigError(
                f"{source}: [study] max_n and time_limit bound a run with a precision target; set "
                "[study] precision (e.g. 0.02) or remove them"
            )
        if not 0.0 <= s.switch_p <= 1.0:
            raise ConfigError(f"{source}: [study] switch_p must lie in [0, 1], got {s.switch_p!r}")
        for key in ("song_permutations", "song_outer", "song_inner"):
            if getattr(s, key) < 1:
                raise ConfigError(f"{source}: [study] {key} must be >= 1, got {getattr(s, key)!r}")
        if s.kind == "shapley-song" and s.song_inner < 2:
            raise ConfigError(f"{source}: [study] song_inner must be >= 2 (an inner variance needs 2 rows)")
        if r.batch_size < 1:
            raise ConfigError(f"{source}: [run] batch_size must be a positive integer, got {r.batch_size!r}")
        if r.checkpoint_every <= 0:
            raise ConfigError(f"{source}: [run] checkpoint_every must be > 0 seconds")
        if self.images.per_class < 0:
            raise ConfigError(f"{source}: [images] per_class must be >= 0 (0 = all images)")
        for key, low, zero in (
            ("draws", 1, ""),
            ("n_images", 0, " (0 = all)"),
            ("block_elements", 0, " (0 = auto)"),
        ):
            if getattr(s, key) < low:
                raise ConfigError(f"{source}: [study] {key} must be >= {low}{zero}, got {getattr(s, key)!r}")
        if s.swap_effect_names and s.mode != "paper":
            raise ConfigError(
                f"{source}: [study] swap_effect_names = true reproduces the authors' naming bug; it needs "
                'mode = "paper"'
            )

    def _check_kind_keys(self, source: str) -> None:
        """Refuse keys the study kind does not read, set to anything but their default."""
        contrast = self.study.kind == "contrast"
        unused = SENSITIVITY_ONLY if contrast else CONTRAST_ONLY
        found = []
        for section, keys in unused.items():
            values, defaults = getattr(self, section), type(getattr(self, section))()
            found += [
                f"[{section}] {key} = {getattr(values, key)!r}"
                for key in keys
                if getattr(values, key) != getattr(defaults, key)
            ]
        if found:
            why = (
                "the contrast study compares each augmentation alone with the original image: it has no "
                "design, estimator, precision target, partition factor or resumable state"
                if contrast
                else "it is read only by kind = 'contrast'"
            )
            verb, it = ("does", "it") if len(found) == 1 else ("do", "them")
            raise ConfigError(
                f"{source}: {', '.join(found)} {verb} not apply to kind = {self.study.kind!r} ({why}); "
                f"remove {it}, or choose another kind"
            )

    def _check_precision(self, source: str) -> None:
        s = self.study
        if not 0.0 < s.precision < 1.0:
            raise ConfigError(
                f"{source}: [study] precision = {s.precision!r} must be a half-width in (0, 1), e.g. 0.02 "
                "(0 = no target)"
            )
        if s.kind not in ("sobol", "shapley"):
            raise ConfigError(
                f"{source}: [study] precision needs kind = 'sobol' or 'shapley' (confidence half-widths), "
                f"not {s.kind!r}"
            )
        if s.replicates < 2:
            raise ConfigError(
                f"{source}: [study] precision needs replicates >= 2 (half-widths come from the spread of "
                f"the replicates), got {s.replicates}"
            )
        ratio = s.max_n // s.n if s.max_n >= s.n else 0
        if s.max_n and (not ratio or s.max_n % s.n or ratio & (ratio - 1)):
            raise ConfigError(
                f"{source}: [study] max_n = {s.max_n} must be n = {s.n} times a power of 2 (each round "
                f"doubles the base samples), e.g. {16 * s.n}; 0 = 16 n"
            )
        if s.time_limit < 0:
            raise ConfigError(f"{source}: [study] time_limit must be >= 0 seconds (0 = none)")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """Read and validate a TOML study config.

    ``overrides`` maps dotted keys (``"study.n"``) to values applied before validation.
    """
    p = Path(path)
    if p.is_dir():
        raise MissingFileError(f"config {str(p)!r} is a folder: pass a TOML file (see configs/ for examples)")
    if not p.is_file():
        raise MissingFileError(f"config file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        data.setdefault(section, {})[name] = value
    return StudyConfig.from_dict(data, source=str(p))


def _unknown(data: Mapping[str, Any], known: Mapping[str, Any], source: str, what: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=3)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown {what} {key!r}.{hint} Allowed: {', '.join(sorted(known))}")


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _unknown(data, fields, where, "key")
    hints = get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(value, hints[key], f"{where} {key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where} = {value!r} is not allowed; choose one of {list(allowed)!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    args = get_args(hint)
    if args:  # a union such as str | list[str]
        for option in args:
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
        raise ConfigError(f"{where} must be {names}, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover - schema error
