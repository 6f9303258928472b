"""Model families, one file each."""

from c2f.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
