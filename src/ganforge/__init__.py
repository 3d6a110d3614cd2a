"""ganforge: train, watch, evaluate and sample generative adversarial networks with PyTorch."""

from ganforge.config import TrainConfig
from ganforge.sampling import load_generator
from ganforge.training import train

__all__ = ["TrainConfig", "load_generator", "train"]
__version__ = "0.1.0"
