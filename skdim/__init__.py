"""skdim: Deep InfoMax pretraining of Site-Net for crystal property prediction.

Public estimators: :class:`DIMPretrainer`, :class:`SiteNetRegressor`,
:class:`SiteNetClassifier`. The function ``featurize`` lives in
:mod:`skdim.featurize` (not re-exported here, so that ``skdim.featurize``
always names the module); the matminer adapter in :mod:`skdim.matminer`.
"""

# first: selects the BLAS's reproducible mode before anything computes (see _threads)
from skdim import _threads  # noqa: F401
from skdim._version import __version__
from skdim.classifier import SiteNetClassifier
from skdim.data import SiteNetDataset
from skdim.featurize import SiteNetInput, featurize_structure
from skdim.pretrained import list_pretrained, load_pretrained
from skdim.pretrainer import DIMPretrainer
from skdim.regressor import SiteNetRegressor

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
