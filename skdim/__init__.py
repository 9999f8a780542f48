"""skdim: Deep InfoMax pretraining of Site-Net for crystal property prediction.

Public estimators: :class:`DIMPretrainer`, :class:`SiteNetRegressor`,
:class:`SiteNetClassifier`, and :class:`SiteFeatureStats` (Site-Net's input
site features pooled over sites, no network). The function ``featurize``
lives in :mod:`skdim.featurize` (not re-exported here, so that
``skdim.featurize`` always names the module); the matminer adapters in
:mod:`skdim.matminer`.

The names below are imported on first use, so that ``import skdim`` (and
``skdim --help``) does not load torch, skorch and pymatgen.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

# first: MKL reads its reproducible mode at its first call, so it is selected
# before anything computes (see skdim._threads, which sets the same default)
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from skdim._version import __version__  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from skdim.classifier import SiteNetClassifier
    from skdim.data import SiteNetDataset
    from skdim.featurize import SiteNetInput, featurize_structure
    from skdim.pretrained import list_pretrained, load_pretrained
    from skdim.pretrainer import DIMPretrainer
    from skdim.regressor import SiteNetRegressor
    from skdim.site_stats import SiteFeatureStats

#: Where each public name is defined: imported by :func:`__getattr__` on first use.
_EXPORTS = {
    "DIMPretrainer": "skdim.pretrainer",
    "SiteNetClassifier": "skdim.classifier",
    "SiteFeatureStats": "skdim.site_stats",
    "SiteNetDataset": "skdim.data",
    "SiteNetInput": "skdim.featurize",
    "SiteNetRegressor": "skdim.regressor",
    "featurize_structure": "skdim.featurize",
    "list_pretrained": "skdim.pretrained",
    "load_pretrained": "skdim.pretrained",
}

__all__ = [
    "DIMPretrainer",
    "SiteFeatureStats",
    "SiteNetClassifier",
    "SiteNetDataset",
    "SiteNetInput",
    "SiteNetRegressor",
    "__version__",
    "featurize_structure",
    "list_pretrained",
    "load_pretrained",
]


def __getattr__(name: str):
    """Import a public name from its module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'skdim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
