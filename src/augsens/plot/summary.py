"""The explorer's summary: what a study found, written from its aggregated indices.

Per study, in words: which factor dominates at which depth (among all factors, and among the
augmentations alone), and for every factor its index at the first and the last checkpoint and where
invariance emerges (the index stays below :data:`INVARIANCE_THRESHOLD` from that checkpoint to the
output).  A checkpoint without a finite index (its activations were never finite) is named as having
no data, and no claim is drawn from it.  Every number is an HTML ``<span class="num">`` carrying the
study, checkpoint, factor, measure and whether it is a value or a half-width, so tests and readers can
trace it back to the results tree.
"""

from __future__ import annotations

import html
from itertools import groupby

import numpy as np
import xarray as xr

from augsens.plot.explorer_data import AUXILIARY_FACTORS
from augsens.plot.maps import checkpoints_of
from augsens.schema import ResultsInfo

__all__ = ["study_summary", "summary_measure", "INVARIANCE_THRESHOLD", "MEASURE_NAMES"]

# an aggregated index below this share of variance counts as "invariant" in the summary's words
INVARIANCE_THRESHOLD = 0.05
MEASURE_NAMES = {
    "ST": "total index",
    "shapley": "Shapley effect",
    "S1": "first-order index",
    "mu_star": "mean absolute elementary effect",
}


def summary_measure(tree: xr.DataTree) -> str | None:
    """The measure the summary speaks of: ST (interactions included) if present, else Shapley, else S1,
    else (a Morris screening) mu_star."""
    cps = checkpoints_of(tree)
    if not cps:
        return None
    ds = tree[cps[0]].dataset
    return next((m for m in ("ST", "shapley", "S1", "mu_star") if f"{m}_checkpoint" in ds), None)


def _num(value: float, *, study: str, checkpoint: str, factor: str, measure: str, role: str) -> str:
    attrs = {
        "data-study": study,
        "data-checkpoint": checkpoint,
        "data-factor": factor,
        "data-measure": measure,
        "data-role": role,
    }
    text = "n/a" if not np.isfinite(value) else f"{value:.2f}"
    a = " ".join(f'{k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<span class="num" {a}>{text}</span>'


class _Table:
    """Aggregated index and half-width per (checkpoint, factor) of one measure."""

    def __init__(self, name: str, tree: xr.DataTree, measure: str) -> None:
        self.name, self.measure = name, measure
        self.cps = [c for c in checkpoints_of(tree) if f"{measure}_checkpoint" in tree[c].dataset]
        first = tree[self.cps[0]].dataset[f"{measure}_checkpoint"]
        self.factors = [str(f) for f in first["factor"].values]
        self.value = np.array([tree[c].dataset[f"{measure}_checkpoint"].values for c in self.cps], float)
        conf = [tree[c].dataset.get(f"{measure}_conf_checkpoint") for c in self.cps]
        self.conf = np.array(
            [c.values if c is not None else np.full(len(self.factors), np.nan) for c in conf], float
        )

    def num(self, i: int, j: int, role: str = "value") -> str:
        v = self.value[i, j] if role == "value" else self.conf[i, j]
        return _num(
            v,
            study=self.name,
            checkpoint=self.cps[i],
            factor=self.factors[j],
            measure=self.measure,
            role=role,
        )

    def value_with_conf(self, i: int, j: int) -> str:
        if np.isfinite(self.conf[i, j]):
            return f"{self.num(i, j)} ± {self.num(i, j, 'conf')}"
        return self.num(i, j)

    def dominant(self, among: list[int]) -> str:
        """Runs of consecutive checkpoints with the same largest factor among ``among``; a run whose
        leader's interval overlaps the runner-up's says so; checkpoints without a finite index among
        ``among`` are named as having no data, never given a leader."""
        leaders: list[tuple[int, int | None]] = []
        for i in range(len(self.cps)):
            finite = np.isfinite(self.value[i, among])
            if not finite.any():
                leaders.append((-1, None))  # no data here: no factor leads
                continue
            row = np.where(finite, self.value[i, among], -np.inf)
            order = np.argsort(-row, kind="stable")
            leaders.append((among[order[0]], among[order[1]] if finite.sum() > 1 else None))
        parts = []
        i = 0
        for j, group in groupby(leaders, key=lambda t: t[0]):
            run = list(group)
            span = range(i, i + len(run))
            if j < 0:
                parts.append(f"no finite index {self._where(span)} (no data: see the non-finite counts)")
                i += len(run)
                continue
            vals = ", ".join(self.value_with_conf(k, j) for k in span)
            text = f"<b>{html.escape(self.factors[j])}</b> {self._where(span)} ({vals})"
            close = [
                self.factors[second]
                for k, (_, second) in zip(span, run, strict=True)
                if second is not None and self._overlap(k, j, second)
            ]
            if close:
                text += f" — not separated from {html.escape(', '.join(sorted(set(close))))} at this n"
            parts.append(text)
            i += len(run)
        return "; ".join(parts)

    def _where(self, span: range) -> str:
        if len(span) == len(self.cps):
            return "at every checkpoint"
        first, last = self.cps[span[0]], self.cps[span[-1]]
        return (
            f"at {html.escape(first)}"
            if first == last
            else f"from {html.escape(first)} to {html.escape(last)}"
        )

    def _overlap(self, i: int, a: int, b: int) -> bool:
        ca, cb = np.nan_to_num(self.conf[i, a]), np.nan_to_num(self.conf[i, b])
        return bool(self.value[i, a] - ca <= self.value[i, b] + cb)

    def trajectory(self, j: int) -> str:
        """``f: v ± c at first → v ± c at last; invariant (< t) from X on`` for factor ``j``."""
        last = len(self.cps) - 1
        text = f"<b>{html.escape(self.factors[j])}</b>: {self.value_with_conf(0, j)}"
        text += f" at {html.escape(self.cps[0])}"
        if last > 0:
            text += f" → {self.value_with_conf(last, j)} at {html.escape(self.cps[last])}"
        finite = np.isfinite(self.value[:, j])
        if not finite.any():
            return f"<b>{html.escape(self.factors[j])}</b>: no finite index at any checkpoint (no data)"
        if not finite.all():
            missing = ", ".join(html.escape(c) for c, ok in zip(self.cps, finite, strict=True) if not ok)
            text += f"; no data at {missing}"
        # a checkpoint without data is neither below nor above the threshold: it ends any invariance claim
        below = np.where(finite, self.value[:, j], np.inf) < INVARIANCE_THRESHOLD
        if below.all():
            text += f"; below {INVARIANCE_THRESHOLD} throughout"
        elif below[-1]:
            start = last
            while start > 0 and below[start - 1]:
                start -= 1
            text += f"; invariant (below {INVARIANCE_THRESHOLD}) from {html.escape(self.cps[start])} on"
        return text


def study_summary(name: str, tree: xr.DataTree) -> str:
    """HTML paragraphs summarising one study from its aggregated indices (see the module docstring)."""
    info = ResultsInfo.from_attrs(tree.attrs)
    a = info.attrs
    head = f"<b>{html.escape(name)}</b>: {html.escape(info.kind)} on {html.escape(info.model)}"
    if a.get("n") is not None:
        head += f", n = {a.get('base_samples_done', a.get('n'))}, {a.get('forwards')} forwards"
    measure = summary_measure(tree)
    if measure is None:
        return f"<p>{head}. No aggregated sensitivity indices to summarise.</p>"
    t = _Table(name, tree, measure)
    label = MEASURE_NAMES[measure]
    if not np.isfinite(t.value).any():
        return (
            f"<p>{head}. <b>No conclusion</b>: no checkpoint has a finite {label} ({measure}), because "
            "no activation had a finite value in any sample (NaN or inf; the counts per checkpoint are "
            "in the provenance). Nothing can be said about invariance or dominant factors.</p>"
        )
    what = (
        "the mean over its activations of the mean absolute change of an activation when the factor "
        "alone moves by one step (output units per unit step; see the Morris screening section)"
        if measure == "mu_star"
        else "the share of its activations' variance owed to each factor"
    )
    parts = [
        f"<p>{head}. Numbers are the {label} ({measure}) of the whole checkpoint: {what}, ± the 95 % "
        "half-width.</p><ul>"
    ]
    everyone = list(range(len(t.factors)))
    parts.append(f"<li>Largest {label}: {t.dominant(everyone)}.</li>")
    augs = [j for j, f in enumerate(t.factors) if f not in AUXILIARY_FACTORS]
    if 0 < len(augs) < len(t.factors):
        parts.append(f"<li>Among the augmentations: {t.dominant(augs)}.</li>")
    parts.append("</ul>")
    if measure != "mu_star":  # the invariance threshold is a share of variance
        parts.append("<ul class='trajectories'>")
        parts.extend(f"<li>{t.trajectory(j)}</li>" for j in everyone)
        parts.append("</ul>")
    return "\n".join(parts)
