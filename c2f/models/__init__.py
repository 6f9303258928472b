"""Model families, one file each."""

from c2f.models.dvae import DVAE, DVAEConfig
from c2f.models.vae import VAE, VAEConfig

__all__ = ["DVAE", "DVAEConfig", "VAE", "VAEConfig"]
