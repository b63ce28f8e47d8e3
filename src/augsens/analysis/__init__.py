"""Analyses that use sensitivity maps: masking, single-class, contrast, correlation, LDA, segments.

* :mod:`~augsens.analysis.contrast`: tables and figures of treatment–control results (each augmentation
  alone against the original image: Wilcoxon signed-rank, rank-biserial and point-biserial maps,
  Benjamini–Yekutieli adjusted p-values; the study is :mod:`augsens.engine.contrast`).
* :mod:`~augsens.analysis.correlation`: Spearman correlation between factors' maps across channels,
  per position (within a measure, across measures, against the coefficient of variation).
* :mod:`~augsens.analysis.lda`: can a factor be recognised from a channel's sensitivity map?
* :mod:`~augsens.analysis.segments`: network segments run on one HSV channel, compared with the network.

Each module is imported on its own (``from augsens.analysis import contrast``), so importing the package
does not load scikit-learn or matplotlib.
"""

__all__ = ["contrast", "correlation", "lda", "segments"]
