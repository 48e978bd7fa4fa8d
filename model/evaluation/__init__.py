"""Evaluation: metrics, ssl-eval, its report, model-free reference maps, the results tables, and the commands that
calibrate, choose the object guidance of and average checkpoints."""
