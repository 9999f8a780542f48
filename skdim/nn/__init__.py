"""Torch modules of Site-Net and Deep InfoMax (pure tensor code: no pymatgen, sklearn, skorch)."""

from skdim.nn.attention import SiteAttention
from skdim.nn.critics import GlobalCritic, LocalCritic
from skdim.nn.encoder import PRESETS, SiteNetEncoder, encoder_config
from skdim.nn.ensemble import SiteNetEnsemble, ensemble_members
from skdim.nn.infomax import DIMScores
from skdim.nn.layers import MLP, OutputActivation, PairwiseLinear, masked_pool, masked_softmax
from skdim.nn.losses import DIMLoss, gaussian_kl
from skdim.nn.models import SiteNet, SiteNetDIM
from skdim.nn.negatives import derangement, engineered_negatives

__all__ = [
    "DIMLoss",
    "DIMScores",
    "GlobalCritic",
    "LocalCritic",
    "MLP",
    "OutputActivation",
    "PRESETS",
    "PairwiseLinear",
    "SiteAttention",
    "SiteNet",
    "SiteNetDIM",
    "SiteNetEncoder",
    "SiteNetEnsemble",
    "derangement",
    "encoder_config",
    "engineered_negatives",
    "ensemble_members",
    "gaussian_kl",
    "masked_pool",
    "masked_softmax",
]
