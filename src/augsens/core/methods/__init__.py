"""Methods: one object per estimator kind, pairing a design with its accumulator.

A method owns everything that differs between estimators, so that the one loop
(:mod:`augsens.core.loop`) drives them all, whoever evaluates the rows (``ag.sobol`` and friends, the
study engine, Ray shards):

=========================  ===========================  ==========  =======================
name                       class                        ``R``       extra per batch
=========================  ===========================  ==========  =======================
``"sobol"``                :class:`Sobol`               D+2 (2D+2)  --
``"shapley-exact"``        :class:`ExactShapley`        2^D         --
``"shapley-permutation"``  :class:`PermutationShapley`  D+1         group orders ``[b, D]``
``"shapley-song"``         :class:`SongShapley`         No x Ni     permutations, positions
``"moments"``              :class:`Moments`             1           --
``"morris"``               :class:`Morris`              D+1         group orders, step signs
=========================  ===========================  ==========  =======================

The protocol (:class:`Method`):

* built as ``cls(problem, n, *, seed, design, replicates, first, dtype, device, **options)``, the
  design by ``make_design``;
  :attr:`~Method.options` maps each extra keyword to the ``[study]`` config key that sets it;
* ``design`` (the design object: ``n``, ``round_ends``, ``rows_per_sample``, ``batches``), and the
  shortcuts ``n``, ``rows_per_sample``, ``round_ends``, ``granularity`` (shard boundaries fall on
  multiples of it: 1 base sample, or ``D`` blocks for the Song double loop);
* ``rows(start, count) -> (unit [count, R, k], extra)``: what to evaluate, and what the update needs;
* ``accumulator()``: a fresh accumulator (:mod:`augsens.core.estimate`), one per output;
* ``update(acc, y, batch)``: add outputs ``y [count * R, *out]`` of a :class:`Batch`;
* ``finalize(acc, factors, dims, coords) -> xarray.Dataset`` and ``attrs()`` (design provenance);
* the flags ``sensitivity`` (indices over factors with half-widths; ``False`` for moments) and
  ``pooled_moments`` (the accumulator gives mean and variance for free).

The treatment–control study's :class:`~augsens.core.methods.contrast.Contrast` (``R = 1 + sum(draws)``,
one pass per block of output elements) follows the same protocol but has no factors, so it is built by
its study (:mod:`augsens.engine.contrast`), not from :data:`METHODS`.

Adding a method is one module here plus its line in :data:`METHODS`; a method a config can choose is
named by a study kind of :data:`KINDS` (:mod:`augsens.core.kinds`, importable without torch so that
configs validate before it loads).
"""

from __future__ import annotations

from augsens.core.kinds import KINDS, Kind
from augsens.core.methods._base import Batch, Method
from augsens.core.methods.exact_shapley import ExactShapley
from augsens.core.methods.moments import Moments
from augsens.core.methods.morris import Morris
from augsens.core.methods.permutation_shapley import PermutationShapley
from augsens.core.methods.sobol import Sobol
from augsens.core.methods.song import SongShapley

__all__ = [
    "Batch",
    "Method",
    "METHODS",
    "KINDS",
    "Kind",
    "Sobol",
    "ExactShapley",
    "PermutationShapley",
    "SongShapley",
    "Moments",
    "Morris",
]

#: every method by name
METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (Sobol, ExactShapley, PermutationShapley, SongShapley, Moments, Morris)
}
