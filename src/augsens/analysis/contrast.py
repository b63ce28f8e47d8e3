"""Tables and figures of treatment–control ("contrast") results.

The contrast study (each augmentation alone against the original image: Wilcoxon signed-rank test,
rank-biserial and point-biserial maps, Benjamini–Yekutieli adjusted p-values) is a study kind of the
study layer, :func:`augsens.engine.contrast.contrast_study`; its statistics are
:mod:`augsens.core.paired`.  :func:`contrast_report` summarises
finished contrast results: the share of significant elements and the mean effect sizes per checkpoint
and augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import xarray as xr

from augsens.errors import UserInputError

__all__ = ["contrast_report"]


def contrast_report(
    results_dirs: Sequence[str | Path], out_dir: str | Path, *, alpha: float = 0.05
) -> list[Path]:
    """Tables and figures of contrast results: share of significant elements and mean effect sizes.

    Parameters
    ----------
    results_dirs : sequence of str or Path
        Results folders written by :func:`augsens.engine.contrast.contrast_study`.
    out_dir : str or Path
        Output folder (created).
    alpha : float
        Level for the Benjamini–Yekutieli adjusted p-values. Default: 0.05.

    Returns
    -------
    list of Path
        ``contrast_summary.csv`` (one row per study, checkpoint and augmentation: share of elements with
        ``p_value_by < alpha``, mean ``|rank_biserial|``, mean ``|point_biserial|``) and, per study, a PNG
        heatmap per quantity (checkpoints by augmentations).
    """
    import pandas as pd

    from augsens.analysis.correlation import plot_heatmap
    from augsens.plot.figures import save_figure
    from augsens.schema import open_tree

    if not 0 < alpha < 1:
        raise UserInputError(f"alpha must lie in (0, 1), got {alpha!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    written: list[Path] = []
    for rdir in results_dirs:
        tree = open_tree(rdir)
        study = Path(rdir).name
        table: dict[str, dict[str, list[float]]] = {}
        ckpts = [c for c in tree.children if "p_value_by" in tree[c].data_vars]
        if not ckpts:
            raise UserInputError(
                f"{str(rdir)!r} holds no contrast results (no 'p_value_by'); run contrast_study"
            )
        for c in ckpts:
            ds = tree[c].to_dataset()
            other = [d for d in ds["p_value_by"].dims if d != "augmentation"]
            share = (ds["p_value_by"] < alpha).mean(other)
            rb = abs(ds["rank_biserial"]).mean(other)
            pb = abs(ds["point_biserial"]).mean(other)
            for a in ds["augmentation"].values:
                rows.append(
                    {
                        "study": study,
                        "checkpoint": c,
                        "augmentation": str(a),
                        "share_significant_by": float(share.sel(augmentation=a)),
                        "mean_abs_rank_biserial": float(rb.sel(augmentation=a)),
                        "mean_abs_point_biserial": float(pb.sel(augmentation=a)),
                    }
                )
            for key, arr in (
                ("share_significant_by", share),
                ("mean_abs_rank_biserial", rb),
                ("mean_abs_point_biserial", pb),
            ):
                table.setdefault(key, {})[c] = [float(v) for v in arr.values]
        augs = [str(a) for a in cast(xr.DataArray, tree[ckpts[0]]["augmentation"]).values]
        for key, by_ckpt in table.items():
            matrix = np.array([by_ckpt[c] for c in ckpts])
            fig = plot_heatmap(
                matrix, ckpts, augs, title=f"{study}: {key}", vmin=0.0, vmax=1.0, cmap="viridis"
            )
            written.append(save_figure(fig, out / f"contrast_{study}_{key}.png", dpi=120))
    csv = out / "contrast_summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [csv, *written]
