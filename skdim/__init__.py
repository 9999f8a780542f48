"""skdim: Deep InfoMax pretraining of Site-Net for crystal property prediction.

The function ``featurize`` lives in :mod:`skdim.featurize` (not re-exported
here, so that ``skdim.featurize`` always names the module).
"""

from importlib.metadata import PackageNotFoundError, version

from skdim.featurize import SiteNetInput, featurize_structure

try:
    __version__ = version("skdim-sitenet")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["SiteNetInput", "__version__", "featurize_structure"]
