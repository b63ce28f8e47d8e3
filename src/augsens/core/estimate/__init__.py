"""Streaming accumulators: sensitivity statistics of every output element, batch by batch.

Activations of a CNN under a design are far too many to store (10^5..10^7 elements × 10^6 forwards),
so every estimator is a reduction over design rows, kept as centred co-moments on the device where the
model runs and merged with Chan, Golub & LeVeque's (1983) formula (:mod:`augsens.core.estimate._base`).
Memory per output element and replicate slot, independent of the number of samples ``n``:

======================================  ==============================================  ======================
accumulator                             reports                                         numbers per element
======================================  ==============================================  ======================
:class:`MomentsAccumulator`             ``mean``, ``var`` (ddof=1), ``cov``             3
:class:`SobolAccumulator`               ``S1`` (Saltelli 2010 / Janon 2014), ``ST``     6 + 4D
                                        (Jansen 1999)
  ``second_order=True``                 + ``S2`` (Saltelli 2002)                        6 + 5D + D(D-1)/2
:class:`ShapleyAccumulator`             ``shapley`` (exact, Owen 2014); byproducts      2^(D+1) + 1
                                        ``S1``, ``ST``, ``S2``,
                                        ``shapley_interaction`` (Grabisch & Roubens
                                        1999)
:class:`PermutationShapleyAccumulator`  ``shapley`` (Goda 2021)                         2D + 3
======================================  ==============================================  ======================

(the count of accepted base samples, the running means of the variables and their co-moments: ``1 + m + P``
for ``m`` variables and ``P`` tracked  pairs, as in :mod:`augsens.core.estimate._base`; each number is 8 bytes
in the default float64 state, 4 in fl oat32, the count always int64; memory is multiplied by
``replicates``.  The interaction maps  of :class:`ShapleyAccumulator` are computed from the same state.
:class:`SongShapleyAccumulator`, the authors' double loop (Song et al. 2016), keeps no co-moments: per player
the sum and the count of cost increments, plus the last cost and a count of non-finite blocks, ``2D + 2``
numbers with no replicates.  :class:`MorrisAccumulator` reports the elementary effects' ``mu``, ``sigma``
(Morris 1991) and ``mu_star`` (Campolongo et al. 2007) from the count, the means of the ``D`` signed and
``D`` absolute effects and the ``D`` centred sums of squares of the signed ones: ``1 + 3D`` numbers per
replicate.)

One protocol for all of them (:class:`Accumulator`, a :class:`typing.Protocol`):

* ``update(y, ...)`` – add a batch of  outputs ``[b, R, *out]`` in design row order (any float dtype, any
  device; moved to the state's device  and dtype); vectorised over the batch.
* ``merge(other)`` – add another accumulator's samples (shards, GPUs); a batch update *is* such a merge.
* ``state_dict()`` / ``from_state_dict(state)`` – plain tensors + class name + format version.
* ``to(device)``, ``allocate(out_shape, device)``, ``n`` (base samples seen), ``out_shape``.
* ``half_widths()`` – the 95 % half-widths per quantity that has one; ``pooled_moments()`` – the outputs'
  mean and variance read off a state that tracks output rows (Sobol, Shapley).
* ``finalize(factors, dims, coords) -> xarray.Dataset`` – per-element results, ``"factor"`` first.
* ``aggregate(group_ids, n_groups) -> xarray.Dataset`` – indices of groups of elements (channels,
  checkpoints): numerators and variances summed before dividing.

Working precision: ``work_dtype=torch.float32`` beside the float64 state (``[run] state_dtype = "mixed"``,
the study default) merges batches of float32 or bfloat16 outputs into one float32 block per accumulator
(one replicate slot at a time, about half a slot's state) that goes into the float64 state every
``BLOCK_SAMPLES`` base samples and whenever the state is read; the state per replicate is unchanged
(:mod:`augsens.core.estimate._base`).

Conventions (all accumulators)
------------------------------
* **Non-finite outputs.** A base sample with NaN or ±inf in any of its rows at an element is left out
  for that element only; ``finalize`` reports the per-element count in ``nonfinite`` and the sum in
  ``attrs["nonfinite_total"]``.  No host synchronisation happens per batch.
* **Zero variance.** An element whose variance is at rounding level of its mean has undefined indices:
  they are NaN (not 0, which would claim "no factor matters" and would break ``Σ Sh = 1``).  The level
  is ``V <= (tol |mean|)^2`` with ``tol = max(2 eps_in, 64 eps_state)``: ``eps_in`` of the dtype the
  outputs arrived in (float32, bfloat16 under autocast: recorded at the first update, kept in the
  state), ``eps_state`` of the state dtype; exactly 0 for a dead unit.  ``aggregate`` drops such
  elements implicitly, since they add 0 to numerators and variances.  Moments of a constant are defined
  (``var = 0``, ``cov = 0``); an element without a single finite value has NaN moments.
* **Confidence intervals.** With ``replicates > 1``, each replicate slot receives an independently
  randomised (scrambled) copy of the design; the ``*_conf`` variables are 95 % Student-t half-widths
  ``t_{0.975, R-1} s / sqrt(R)`` of the per-replicate estimates (randomised QMC; Owen 1997, L'Ecuyer &
  Lemieux 2002).  Bootstrap and CLT intervals assume i.i.d. rows, which a Sobol' sequence is not, and the
  bootstrap needs the stored outputs.  The point estimate pools all replicates (equal to one
  accumulator over all rows).  ``replicates = 1`` gives NaN half-widths.
"""

from augsens.core.estimate.moments import MomentsAccumulator
from augsens.core.estimate.morris import MorrisAccumulator
from augsens.core.estimate.protocol import Accumulator
from augsens.core.estimate.shapley import PermutationShapleyAccumulator, ShapleyAccumulator
from augsens.core.estimate.sobol import SobolAccumulator
from augsens.core.estimate.song import SongShapleyAccumulator

__all__ = [
    "Accumulator",
    "MomentsAccumulator",
    "SobolAccumulator",
    "ShapleyAccumulator",
    "PermutationShapleyAccumulator",
    "SongShapleyAccumulator",
    "MorrisAccumulator",
]
