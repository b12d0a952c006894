"""Training with PyTorch Lightning: config, step-indexed data, the LightningModule, fit()."""

from unmasked.training.config import TrainConfig, load_config, save_config
from unmasked.training.fit import fit

__all__ = ["TrainConfig", "fit", "load_config", "save_config"]
