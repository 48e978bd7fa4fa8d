"""Checkpoint files: our safetensors format, the import of published checkpoints, weight averaging."""
