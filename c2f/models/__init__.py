"""Model families, one file each."""

from c2f.models.dvae import DVAE, DVAEConfig
from c2f.models.hierarchical import HVAE, HierarchicalConfig, LadderVAE, MarkovHVAE, make_hierarchical
from c2f.models.multistage import MSVAE, MSVAEConfig
from c2f.models.pcaae import PCAAE, PCAAEConfig
from c2f.models.pixelvae import HierarchicalPixelVAE, HierarchicalPixelVAEConfig, PixelVAE, PixelVAEConfig
from c2f.models.progressive import (GroupedVAE, MultipleVAE, ProgressiveConfig, QuotientVAE, RecurrentVAE,
                                    SingleVAE, make_progressive)
from c2f.models.sequential import SVAE, SVAEConfig
from c2f.models.vae import VAE, VAEConfig
from c2f.models.vlae import VLAE, VLAEConfig

__all__ = ["VAE", "VAEConfig", "ProgressiveConfig", "GroupedVAE", "SingleVAE", "RecurrentVAE", "QuotientVAE",
           "MultipleVAE", "make_progressive", "PCAAE", "PCAAEConfig", "DVAE", "DVAEConfig",
           "HierarchicalConfig", "HVAE", "MarkovHVAE", "LadderVAE", "make_hierarchical", "VLAE", "VLAEConfig",
           "SVAE", "SVAEConfig", "MSVAE", "MSVAEConfig", "PixelVAE", "PixelVAEConfig",
           "HierarchicalPixelVAE", "HierarchicalPixelVAEConfig"]
