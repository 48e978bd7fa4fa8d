"""Evaluation: metrics, ssl-eval, its report, model-free reference maps and the results tables."""
