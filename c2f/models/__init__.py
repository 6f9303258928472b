"""Model families, one file each.

Imports are lazy (PEP 562): ``from c2f.models import VAE`` loads ``c2f.models.vae`` only, so a chapter's
record lists just the model files it used (``c2f.book.records.code_hashes``) and a change in one family leaves
the other chapters' pages current.
"""

import importlib

_FAMILIES = {
    "air": ["AIR", "AIRConfig"],
    "classifier": ["Classifier", "ClassifierConfig"],
    "convdraw": ["ConvDRAW", "ConvDRAWConfig"],
    "dvae": ["DVAE", "DVAEConfig"],
    "hierarchical": ["HVAE", "HierarchicalConfig", "LadderVAE", "MarkovHVAE", "make_hierarchical"],
    "multistage": ["MSVAE", "MSVAEConfig"],
    "pcaae": ["PCAAE", "PCAAEConfig"],
    "pixelvae": ["HierarchicalPixelVAE", "HierarchicalPixelVAEConfig", "PixelVAE", "PixelVAEConfig"],
    "progressive": ["GroupedVAE", "MultipleVAE", "ProgressiveConfig", "QuotientVAE", "RecurrentVAE", "SingleVAE",
                    "make_progressive"],
    "sequential": ["SVAE", "SVAEConfig"],
    "vae": ["VAE", "VAEConfig"],
    "vlae": ["VLAE", "VLAEConfig"],
}
_MODULE_OF = {name: module for module, names in _FAMILIES.items() for name in names}

__all__ = [name for names in _FAMILIES.values() for name in names]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted([*globals(), *__all__])
