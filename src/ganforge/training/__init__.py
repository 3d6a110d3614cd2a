"""Training: the loop, the D and G steps, checkpoints, devices, run folders."""

from ganforge.training.loop import train

__all__ = ["train"]
