"""Parameters every skdim estimator shares: their constraints, precisions, devices."""

from __future__ import annotations

import os
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

#: Mixed-precision settings (``precision=``) and the autocast dtype of each.
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
#: Constraints of the parameters every skdim estimator has (scikit-learn's
#: ``_parameter_constraints`` format; skorch's own parameters are not listed).
SHARED_CONSTRAINTS: dict[str, list] = {
    "max_atoms": [_POSITIVE_INT, None],
    "supercell": [StrOptions({"cubic", "primitive"}), None],
    "site_properties": ["array-like", None],
    "pair_features": ["array-like", None],
    "max_sites": [_POSITIVE_INT, None],
    "lr": [Interval(Real, 0, None, closed="left")],  # 0: weights stay as they are
    "max_epochs": [_POSITIVE_INT, None],
    "batch_pairs": [_POSITIVE_INT],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "early_stopping": [_POSITIVE_INT, None],
    "checkpoint_dir": [str, os.PathLike, None],
    "device": [str, torch.device, None],
    "precision": [StrOptions(set(PRECISIONS))],
    "gradient_clip": [Interval(Real, 0, None, closed="left"), None],
    "random_state": ["random_state"],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}


def resolve_device(device: str | torch.device | None) -> str | torch.device | None:
    """'auto' becomes 'cuda' when a GPU is available, else 'cpu'."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
