"""Run reports: metrics, breakdowns, charts and comparisons from a run's journal."""
