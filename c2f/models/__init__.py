"""Model families, one file each."""

from c2f.models.dvae import DVAE, DVAEConfig
from c2f.models.pcaae import PCAAE, PCAAEConfig
from c2f.models.progressive import (GroupedVAE, MultipleVAE, ProgressiveConfig, QuotientVAE, RecurrentVAE,
                                    SingleVAE, make_progressive)
from c2f.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig", "ProgressiveConfig", "GroupedVAE", "SingleVAE", "RecurrentVAE", "QuotientVAE",
           "MultipleVAE", "make_progressive", "PCAAE", "PCAAEConfig", "DVAE", "DVAEConfig"]
