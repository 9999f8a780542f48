"""skdim: Deep InfoMax pretraining of Site-Net for crystal property prediction.

Public estimators: :class:`DIMPretrainer`, :class:`SiteNetRegressor`,
:class:`SiteNetClassifier`. The function ``featurize`` lives in
:mod:`skdim.featurize` (not re-exported here, so that ``skdim.featurize``
always names the module); the matminer adapter in :mod:`skdim.matminer`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skdim-sitenet")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from skdim.classifier import SiteNetClassifier  # noqa: E402
from skdim.data import SiteNetDataset  # noqa: E402
from skdim.featurize import SiteNetInput, featurize_structure  # noqa: E402
from skdim.pretrained import list_pretrained, load_pretrained  # noqa: E402
from skdim.pretrainer import DIMPretrainer  # noqa: E402
from skdim.regressor import SiteNetRegressor  # noqa: E402

__all__ = [
    "DIMPretrainer",
    "SiteNetClassifier",
    "SiteNetDataset",
    "SiteNetInput",
    "SiteNetRegressor",
    "__version__",
    "featurize_structure",
    "list_pretrained",
    "load_pretrained",
]
