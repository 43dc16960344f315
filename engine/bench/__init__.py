"""Benchmarks: the project measured against its anchors, side by side, with ratios."""
