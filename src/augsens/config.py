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
    size = 224                       # side of the square images (32 for a CIFAR-size network), or "keep"

    [study]
    kind = "sobol"                   # sobol | shapley | shapley-song | moments | morris | contrast
    augmentations = "set1"           # set1 | set2 | corruptions | list of names
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

    [augment.hue]                    # ranges or distributions of parameters (augsens.augment.ranges)
    low = -0.1
    high = 0.1

    [run]
    batch_size = 64
    device = "auto"                  # auto | cpu | cuda | cuda:1 ...
    dtype = "float32"                # float32 | bfloat16 (autocast) | auto (bf16 on a CPU with native
                                     #   bf16 -- AMX or AVX512-BF16 --, else float32)
    channels_last = "auto"           # true | false | auto (NHWC on a CPU, and under bf16 on any device,
                                     #   for a network with 2-D convolutions that runs in it)
    fold_batchnorm = true            # fold eval batch norms into the convolutions before them

Every key has a default (:class:`StudyConfig`); unknown keys and wrong types fail with one message
naming the key, the expected type or allowed values, and close matches.  The kinds come from the
registry :data:`augsens.core.kinds.KINDS`, where each declares the keys it reads (the contrast study
none of the sensitivity studies' design, precision or state keys; ``shapley-song`` its own size keys
instead of ``n``, ``design`` and ``replicates``; each kind its methods' options); a key that only other
kinds read, set to anything but its default, is refused, so a setting never goes silently unused.
The file is UTF-8 as TOML requires, with or without a byte-order mark (UTF-16 and UTF-32 with one are
read too); another encoding is refused, naming the first byte that does not decode.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

from augsens.core.budget import Budget, Spelling
from augsens.core.kinds import KINDS, foreign_keys, kinds_where, or_list
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
    "StudyKind",
]

#: The study kinds: ``[study] kind``, ``ag.study(kind=...)``, from the registry
#: :data:`augsens.core.kinds.KINDS` (static checkers see ``str``; the config checks the names).
STUDY_KINDS: tuple[str, ...] = tuple(KINDS)
if TYPE_CHECKING:
    StudyKind = str
else:
    StudyKind = Literal[STUDY_KINDS]


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
    # side of the square images (shorter side round(size * 256 / 224), centre crop), or "keep" their size
    size: int | str = 224

    @property
    def side(self) -> int | None:
        """``size`` as the loaders take it: the side in pixels, or ``None`` to keep the images' size."""
        return None if self.size == "keep" else int(self.size)


@dataclass
class StudySection:
    kind: StudyKind = "sobol"
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
    # morris (elementary effects): grid levels of the trajectories (even); the image and order factors
    # take at most this many values
    morris_levels: int = 16
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
    # "auto": NHWC where it was measured faster (augsens.engine.plan.resolve_layout)
    channels_last: bool | Literal["auto"] = "auto"
    # eval batch norms folded into the convolution before them (augsens.models.fold); rounding only
    fold_batchnorm: bool = True
    checkpoint_every: float = 120.0


@dataclass
class StudyConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    study: StudySection = field(default_factory=StudySection)
    run: RunConfig = field(default_factory=RunConfig)
    # [augment.NAME] / [augment.NAME.PARAMETER] range tables, flattened (augsens.augment.ranges.normalize)
    augment: dict[str, Any] = field(default_factory=dict)

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
        built: dict[str, Any] = {}
        for name in sections:
            section_cls = get_type_hints(cls)[name]
            value = data.get(name, {})
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{name}] must be a table, got {value!r}")
            if name == "augment":  # free-form: one table per augmentation, checked by its own module
                from augsens.augment.ranges import normalize

                try:
                    built[name] = normalize(_nested(value), source)
                except UserInputError as exc:
                    raise ConfigError(str(exc)) from exc
                continue
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
        kind = KINDS[s.kind]
        if s.design == "sobol" and kind.sized and s.n & (s.n - 1):
            lo = 1 << (s.n.bit_length() - 1)
            raise ConfigError(
                f"{source}: [study] n = {s.n} is not a power of 2, which the Sobol' design needs to keep "
                f'its balance properties; use n = {lo} or {2 * lo}, or design = "iid"'
            )
        if kind.sized and (s.replicates < 1 or s.n % s.replicates):
            raise ConfigError(
                f"{source}: [study] replicates = {s.replicates} must be a positive divisor of n = {s.n}"
                + _replicates_hint(s.n, s.replicates, s.design)
            )
        if 0.0 < s.precision < 1.0 and not kind.rounds:
            raise ConfigError(
                f"{source}: [study] precision needs kind = {or_list(kinds_where(rounds=True))} (confidence "
                f"half-widths), not {s.kind!r}"
            )
        self.budget(source)
        if not 0.0 <= s.switch_p <= 1.0:
            raise ConfigError(f"{source}: [study] switch_p must lie in [0, 1], got {s.switch_p!r}")
        for key in ("song_permutations", "song_outer", "song_inner"):
            if getattr(s, key) < 1:
                raise ConfigError(f"{source}: [study] {key} must be >= 1, got {getattr(s, key)!r}")
        if s.morris_levels < 2 or s.morris_levels % 2:
            raise ConfigError(
                f"{source}: [study] morris_levels must be an even integer >= 2 (e.g. 4 or 16), got "
                f"{s.morris_levels!r}"
            )
        if "song_inner" in kind.options and s.song_inner < 2:
            raise ConfigError(f"{source}: [study] song_inner must be >= 2 (an inner variance needs 2 rows)")
        if r.batch_size < 1:
            raise ConfigError(f"{source}: [run] batch_size must be a positive integer, got {r.batch_size!r}")
        if r.checkpoint_every <= 0:
            raise ConfigError(f"{source}: [run] checkpoint_every must be > 0 seconds")
        if self.images.per_class < 0:
            raise ConfigError(f"{source}: [images] per_class must be >= 0 (0 = all images)")
        size = self.images.size
        if (isinstance(size, str) and size != "keep") or (isinstance(size, int) and size < 1):
            raise ConfigError(
                f"{source}: [images] size = {size!r}: give the side in pixels (e.g. 224, or 32 for a "
                'CIFAR-size network) or "keep" to keep the images\' own size'
            )
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
        """Refuse keys the study kind does not read (:attr:`augsens.core.kinds.Kind.reads`) but another
        kind does, set to anything but their default; one message per reason, the first raised."""
        kind = KINDS[self.study.kind]
        reasons: dict[str, list[str]] = {}
        for section in ("study", "images", "run", "model"):
            values, defaults = getattr(self, section), type(getattr(self, section))()
            foreign = foreign_keys(kind.name, section)
            for f in dataclasses.fields(values):
                key = f.name
                readers = foreign.get(key)
                if not readers or getattr(values, key) == getattr(defaults, key):
                    continue
                why = kind.unread or f"it is read only by kind = {or_list(readers)}"
                reasons.setdefault(why, []).append(f"[{section}] {key} = {getattr(values, key)!r}")
        for why, found in reasons.items():
            verb, it = ("does", "it") if len(found) == 1 else ("do", "them")
            raise ConfigError(
                f"{source}: {', '.join(found)} {verb} not apply to kind = {kind.name!r} ({why}); "
                f"remove {it}, or choose another kind"
            )

    def budget(self, source: str = "config") -> Budget:
        """The run's budget from ``[study]`` n, replicates, precision, max_n and time_limit (0: unset),
        checked by :meth:`augsens.core.budget.Budget.of`; raises :class:`ConfigError`."""
        s = self.study
        return Budget.of(
            s.n,
            replicates=s.replicates,
            precision=s.precision or None,
            max_n=s.max_n or None,
            time_limit=s.time_limit or None,
            spelling=Spelling(keywords=False, where=f"{source}: [study] ", error=ConfigError),
        )


def _replicates_hint(n: int, replicates: int, design: str) -> str:
    """Valid values near the refused ``(n, replicates)``.  ``design = "sobol"`` needs ``n`` and
    ``n / replicates`` powers of 2 (so only the replicates can change), ``"sobol-lms"`` only
    ``n / replicates``, ``"iid"`` only a divisor."""
    if replicates < 1:
        return ": e.g. replicates = 4"
    if design == "iid":
        divisors = [r for r in range(1, min(n, 64) + 1) if n % r == 0]
        near = sorted(divisors, key=lambda r: (abs(r - replicates), r))[:2]
        low = n - n % replicates
        sizes = [m for m in (low, low + replicates) if m > 0]
        rule = "replicates must divide n"
    else:
        powers = [1 << k for k in range(n.bit_length()) if n % (1 << k) == 0]
        near = sorted(powers, key=lambda r: (abs(r - replicates), r))[:2]
        per = max(n // replicates, 1)
        low = 1 << (per.bit_length() - 1)
        sizes = [] if design == "sobol" else [replicates * low, replicates * 2 * low]
        rule = "the Sobol' design needs n / replicates to be a power of 2" + (
            ", and n too" if design == "sobol" else ""
        )
    options = " or ".join(f"replicates = {r}" for r in sorted(near))
    more = " or ".join(f"n = {m}" for m in sizes)
    return f" ({rule}): use {options}" + (f", or {more} with replicates = {replicates}" if more else "")


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
        data = tomllib.loads(_read_text(p))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        data.setdefault(section, {})[name] = value
    return StudyConfig.from_dict(data, source=str(p))


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Undo the flattening of :func:`augsens.augment.ranges.normalize` (``"erasing.scale"`` keys), so a
    saved config's ``augment`` table validates again as written."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        name, _, param = str(key).partition(".")
        if param:
            out.setdefault(name, {})[param] = value
        else:
            out[name] = value
    return out


# byte-order marks an editor may put in front of a TOML file (TOML itself is UTF-8)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _read_text(p: Path) -> str:
    """The text of a config file: UTF-8, with or without a byte-order mark (UTF-16 and UTF-32 with
    one too, as some editors save); anything else is refused with the place of the first bad byte."""
    raw = p.read_bytes()
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        if encoding == "utf-8":
            guess, tool = "Latin-1 / Windows-1252", f" (e.g. iconv -f latin1 -t utf-8 {p.name} > fixed.toml)"
        else:
            guess, tool = f"damaged {encoding.upper()}", ""
        raise ConfigError(
            f"{p}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at line {line}, column {column}; "
            f"it looks like {guess}): TOML configs must be UTF-8. Re-save it as UTF-8{tool}"
        ) from exc


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
