"""Figures: sensitivity maps, depth profiles, heatmaps, augmentation galleries, HTML report."""
