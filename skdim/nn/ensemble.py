"""Deep ensembles: several networks of one architecture evaluated side by side."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SiteNetEnsemble(nn.Module):
    """Independently initialized copies of a network, applied to the same batch.

    The members share nothing but their input: each has its own weights
    (``members.<k>.*`` in the state dict), and the loss of
    :class:`~skdim.SiteNetRegressor` with ``n_estimators > 1`` is the sum of
    the members' losses, so each member receives the gradient of its own loss
    only.

    Parameters
    ----------
    members : sequence of nn.Module
        At least two networks mapping a batch to a tensor of shape
        (B, n_outputs), usually :class:`SiteNet` modules of one architecture
        built from different seeds.

    Attributes
    ----------
    members : nn.ModuleList
        The networks.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNet, SiteNetEnsemble
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> _ = torch.manual_seed(0)
    >>> ensemble = SiteNetEnsemble([SiteNet(n_blocks=1) for _ in range(3)])
    >>> predictions = ensemble(**batch)  # (B, members, n_outputs)
    >>> predictions.shape
    torch.Size([2, 3, 1])
    >>> bool(predictions.std(dim=1).min() > 0)  # members differ
    True
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder (all members share its architecture)."""
        return self.members[0].encoder

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """Every member's predictions for a batch.

        Parameters
        ----------
        **batch : tensor
            The batch of :func:`skdim.data.collate_sitenet`.

        Returns
        -------
        tensor of shape (B, n_members, n_outputs)
        """
        return torch.stack([member(**batch) for member in self.members], dim=1)


def ensemble_members(module: nn.Module) -> list[nn.Module]:
    """The members of a :class:`SiteNetEnsemble`, or ``[module]`` for a single network.

    Parameters
    ----------
    module : nn.Module
        A network or an ensemble.

    Returns
    -------
    list of nn.Module

    Examples
    --------
    >>> from skdim.nn import SiteNet, SiteNetEnsemble, ensemble_members
    >>> single = SiteNet(n_blocks=1)
    >>> ensemble_members(single) == [single]
    True
    >>> len(ensemble_members(SiteNetEnsemble([SiteNet(n_blocks=1), SiteNet(n_blocks=1)])))
    2
    """
    if isinstance(module, SiteNetEnsemble):
        return list(module.members)
    return [module]
