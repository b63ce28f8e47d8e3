"""Study kinds: what ``[study] kind`` (``ag.study(kind=...)``) can name, declared once.

A kind is a :class:`Kind` entry of :data:`KINDS`.  Config validation (:mod:`augsens.config`), the study
plan (:mod:`augsens.engine.plan`), the one-call API (:func:`augsens.engine.quick.study`) and the CLI read
these entries and never name a kind themselves:

=================  ==========================================  ======  ======  ======
kind               methods (registry names)                    ``n``   rounds  shards
=================  ==========================================  ======  ======  ======
``sobol``          ``sobol``                                   yes     yes     yes
``shapley``        ``shapley-exact``, ``shapley-permutation``  yes     yes     yes
``shapley-song``   ``shapley-song``                            --      --      yes
``moments``        ``moments``                                 yes     --      yes
``morris``         ``morris``                                  yes     --      yes
``contrast``       ``contrast`` (its study builds it)          --      --      --
=================  ==========================================  ======  ======  ======

Each kind reads some of the config keys that not every kind reads (:attr:`Kind.reads`): the keys of
every sensitivity study (factors, precision target, resumable state, mixed precision), the design size
(``n``, ``design``, ``replicates``) of a sized kind, the key choosing among its methods and its methods'
own option keys (the values of :attr:`augsens.core.methods.Method.options`).  Such a key set to anything
but its default under a kind that does not read it is refused by the config's validation, so a
setting never goes silently unused.

This module imports nothing heavy (no torch), so a config is validated before torch loads; methods are
named by their registry names and built by :func:`augsens.engine.plan.plan`.

Adding a kind is its method module in :mod:`augsens.core.methods` and one entry here.

Examples
--------
>>> from augsens.core.kinds import KINDS, kinds_where
>>> KINDS["shapley"].method("permutation"), kinds_where(rounds=True)
('shapley-permutation', ('sobol', 'shapley'))
>>> KINDS["morris"].reads["study"][-4:]
('n', 'design', 'replicates', 'morris_levels')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Kind", "KINDS", "kind", "foreign_keys", "kinds_where", "or_list", "SENSITIVITY_KEYS", "SIZE_KEYS"]

#: Keys (by section) every sensitivity kind reads: its factors (switches, order), a precision target and
#: its budget, the partition factor, mixed precision and resumable state.
SENSITIVITY_KEYS: dict[str, tuple[str, ...]] = {
    "study": ("switches", "switch_p", "order", "precision", "max_n", "time_limit"),
    "images": ("partition2",),
    "run": ("dtype", "state_dtype", "channels_last", "fold_batchnorm", "checkpoint_every"),
}
#: Keys of the design's size, read by a sized kind: base samples, base points and replicate blocks.
SIZE_KEYS: tuple[str, ...] = ("n", "design", "replicates")


@dataclass(frozen=True)
class Kind:
    """One study kind: its methods, the config keys it reads and how the engine runs it.

    Attributes
    ----------
    name : str
        ``[study] kind``.
    summary : str
        One line for ``augsens info``, the CLI's help and the docs.
    methods : mapping of str to str
        The registry names of its methods (:data:`augsens.core.methods.METHODS`), by the value of the
        ``[study]`` key :attr:`choose`; ``{"": name}`` for a kind with one method.
    choose : str
        The ``[study]`` key choosing among :attr:`methods` (``"shapley_method"``); ``""``: one method.
    options : tuple of str
        The ``[study]`` keys of its methods' own options (the values of their ``Method.options``).
    sensitivity : bool
        A sensitivity study: the augmentations are factors of one design, run by the study engine with
        a resumable state; reads :data:`SENSITIVITY_KEYS`.
    sized : bool
        Its design's size is ``n`` base samples in ``replicates`` blocks of base points ``design``
        (:data:`SIZE_KEYS`); ``False`` for a kind that sizes its design with its own keys.
    rounds : bool
        Takes a precision target: rounds doubling ``n`` until the replicates' half-widths reach it.
    shards : bool
        Runs on Ray shards (``--ray``); ``False`` runs in one process.
    one_process : str
        Why a kind without shards runs in one process (the ``--ray`` refusal says it).
    unread : str
        Why the keys it does not read do not apply (default: which kinds read them).
    paper_switches : {"all", "nonparametric"}
        The augmentations switched on and off in paper mode (the authors' switch model per family,
        docs/paper.md §7); clean mode switches all of them.
    paper_integer_params : bool
        Paper mode draws integer parameters where the authors' code did (their Shapley studies).
    """

    name: str
    summary: str
    methods: Mapping[str, str]
    choose: str = ""
    options: tuple[str, ...] = ()
    sensitivity: bool = True
    sized: bool = True
    rounds: bool = False
    shards: bool = True
    one_process: str = ""
    unread: str = ""
    paper_switches: Literal["all", "nonparametric"] = "all"
    paper_integer_params: bool = False
    reads: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        reads: dict[str, list[str]] = {}
        if self.sensitivity:
            for section, keys in SENSITIVITY_KEYS.items():
                reads.setdefault(section, []).extend(keys)
        study = reads.setdefault("study", [])
        if self.sized:
            study.extend(SIZE_KEYS)
        if self.choose:
            study.append(self.choose)
        study.extend(self.options)
        object.__setattr__(self, "reads", {s: tuple(keys) for s, keys in reads.items() if keys})

    def method(self, choice: str = "") -> str:
        """The registry name of the method for the value ``choice`` of :attr:`choose` (ignored without)."""
        return self.methods[choice if self.choose else ""]


_SONG_UNREAD = (
    "its design is song_permutations x factors blocks of song_outer x song_inner i.i.d. rows in one "
    "replicate: set its size with song_permutations, song_outer and song_inner"
)
_CONTRAST_UNREAD = (
    "the contrast study compares each augmentation alone with the original image: it has no design, "
    "estimator, precision target, partition factor or resumable state"
)

#: Every study kind, by name, in the order the docs list them.
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "sobol",
            "first-order and total Sobol' indices (S1, ST; S2 with second_order)",
            {"": "sobol"},
            options=("second_order", "sobol_method"),
            rounds=True,
            paper_switches="nonparametric",
        ),
        Kind(
            "shapley",
            "Shapley effects, exact (up to 12 factors) or from permutations (shapley_method)",
            {"exact": "shapley-exact", "permutation": "shapley-permutation"},
            choose="shapley_method",
            rounds=True,
            paper_integer_params=True,
        ),
        Kind(
            "shapley-song",
            "the authors' Song-type Shapley double loop (song_permutations x song_outer x song_inner)",
            {"": "shapley-song"},
            options=("song_permutations", "song_outer", "song_inner"),
            sized=False,
            unread=_SONG_UNREAD,
            paper_integer_params=True,
        ),
        Kind(
            "moments",
            "mean, variance and coefficient of variation of every activation",
            {"": "moments"},
            paper_switches="nonparametric",
        ),
        Kind(
            "morris",
            "Morris screening: mu, mu_star and sigma of elementary effects from n trajectories",
            {"": "morris"},
            options=("morris_levels",),
        ),
        Kind(
            "contrast",
            "each augmentation alone against the original image (Wilcoxon, effect sizes, BY)",
            {"": "contrast"},
            options=("draws", "pairing", "n_images", "block_elements", "swap_effect_names"),
            sensitivity=False,
            sized=False,
            shards=False,
            one_process="its element blocks are passes over the images, not shards",
            unread=_CONTRAST_UNREAD,
        ),
    )
}


def kind(name: str) -> Kind:
    """The entry of kind ``name``; an unknown name is a ``KeyError`` naming the kinds there are."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown study kind {name!r}; kinds are {or_list(KINDS)}") from None


def foreign_keys(name: str, section: str) -> dict[str, tuple[str, ...]]:
    """The keys of ``section`` that other kinds read and kind ``name`` does not, each with its readers
    (in the order the kinds declare them)."""
    mine = KINDS[name].reads.get(section, ())
    out: dict[str, list[str]] = {}
    for k in KINDS.values():
        for key in k.reads.get(section, ()):
            if key not in mine:
                out.setdefault(key, []).append(k.name)
    return {key: tuple(readers) for key, readers in out.items()}


def kinds_where(**flags: bool) -> tuple[str, ...]:
    """Names of the kinds whose flags have the given values, e.g. ``kinds_where(rounds=True)``."""
    return tuple(k.name for k in KINDS.values() if all(getattr(k, f) == v for f, v in flags.items()))


def or_list(names: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``: names for a message."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
