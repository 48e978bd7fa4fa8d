"""Training: the loop, positives sampling, losses, augmentations, the neighbour bank, devices, the CLI."""
