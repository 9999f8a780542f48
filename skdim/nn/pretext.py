"""Structure-forcing pretext tasks: strain regression and masked-site prediction.

Each task is a module called as ``task(encoder, batch, random=...)``: it
corrupts the batch in its own way, encodes the corrupted copy with gradient
through the shared :class:`~skdim.nn.SiteNetEncoder`, and returns its loss (a
scalar to minimize) and an accuracy-like figure to record. Neither can be
solved from composition: the strain of a crystal shows only in its distances
against the sizes its elements usually have, and a masked site's element
only in its environment. :class:`~skdim.nn.SiteNetDIM` runs them beside (or
instead of) its Deep InfoMax critics, as ``pretext={"strain": StrainTask(...)}``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import cross_entropy

from skdim.nn.layers import MLP
from skdim.nn.negatives import strained_pairs

#: Atomic numbers a masked-site head predicts: 0 (unused) to 118.
N_ELEMENTS = 119


class StrainTask(nn.Module):
    """Regress the uniform strain applied to a crystal's distances.

    Every distance of a crystal is scaled by one factor s ~ U(``low``,
    ``high``) (the coulomb channel moves with it), the copy is encoded, and a
    head on its crystal embedding predicts log s, standardized to
    [-1, 1]; the loss is the mean squared error.

    Parameters
    ----------
    embedding_dim : int
        Width of the encoder's crystal embedding.
    low, high : float, default=0.85, 1.15
        Range of the strain factor.
    hidden : int, default=64
        Hidden width of the head.
    channels : tuple of str, default=("distance",)
        Names of the pair channels (see :func:`skdim.nn.negatives.strained_pairs`).

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNetEncoder
    >>> from skdim.nn.pretext import StrainTask
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> encoder = SiteNetEncoder()
    >>> loss, metric = StrainTask(encoder.embedding_dim)(encoder, batch, random=False)
    >>> loss.shape, loss.requires_grad
    (torch.Size([]), True)
    """

    def __init__(
        self,
        embedding_dim: int,
        low: float = 0.85,
        high: float = 1.15,
        hidden: int = 64,
        channels: tuple[str, ...] = ("distance",),
    ):
        super().__init__()
        if not 0 < low < 1 < high:
            raise ValueError(f"need 0 < low < 1 < high, got low={low}, high={high}")
        self.low, self.high, self.channels = low, high, tuple(channels)
        self.head = MLP(embedding_dim, [hidden], 1)

    def scales(self, n: int, *, random: bool, device=None) -> torch.Tensor:
        """Strain factors: uniform in training, evenly spaced otherwise."""
        if random:
            u = torch.rand(n, device=device)
        else:
            u = (torch.arange(n, device=device) + 0.5) / n
        return self.low + u * (self.high - self.low)

    def forward(
        self, encoder: nn.Module, batch: dict[str, torch.Tensor], *, random: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and mean absolute error of the predicted strain in percent.

        Parameters
        ----------
        encoder : SiteNetEncoder
            The encoder being pretrained.
        batch : dict of tensors
            A padded batch (:func:`skdim.data.collate_sitenet`).
        random : bool
            Random strains (training) or fixed ones (validation).

        Returns
        -------
        loss : tensor, scalar
        strain_error : tensor, scalar (detached)
            Mean absolute error of the predicted s, in percent.
        """
        scale = self.scales(
            len(batch["site_mask"]), random=random, device=batch["site_mask"].device
        )
        strained = {k: v for k, v in batch.items() if k != "pair_embedding"}
        strained["pair_features"] = strained_pairs(batch["pair_features"], scale, self.channels)
        embedding = encoder(**strained)
        half_range = 0.5 * (math.log(self.high) - math.log(self.low))
        center = 0.5 * (math.log(self.high) + math.log(self.low))
        target = (torch.log(scale) - center) / half_range
        predicted = self.head(embedding)[:, 0].float()
        loss = ((predicted - target) ** 2).mean()
        error = (torch.exp(predicted.detach() * half_range + center) - scale).abs().mean() * 100
        return loss, error


class MaskedSiteTask(nn.Module):
    """Predict the element of masked sites from their environment.

    In every crystal a fraction r ~ U(``low``, ``high``) of the sites (at
    least one) has its input features replaced by a learned mask token, in
    all its periodic images; the masked sites also lose their d = 0 pair (the
    site's own copy) and, with a "coulomb" channel, the Z-dependent pair
    values that involve them. The encoder's site representation of each
    masked site then predicts its atomic number (cross-entropy).

    Parameters
    ----------
    local_dim : int
        Width of the encoder's site representation.
    n_site_features : int
        Width of the raw site features (the mask token's width).
    low, high : float, default=0.15, 0.3
        Range of the masked fraction.
    hidden : int, default=64
        Hidden width of the head.
    channels : tuple of str, default=("distance",)
        Names of the pair channels.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNetEncoder
    >>> from skdim.nn.pretext import MaskedSiteTask
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> encoder = SiteNetEncoder()
    >>> task = MaskedSiteTask(encoder.local_dim, n_site_features=8)
    >>> loss, accuracy = task(encoder, batch, random=False)
    >>> loss.shape, 0 <= float(accuracy) <= 100
    (torch.Size([]), True)
    """

    def __init__(
        self,
        local_dim: int,
        n_site_features: int,
        low: float = 0.15,
        high: float = 0.3,
        hidden: int = 64,
        channels: tuple[str, ...] = ("distance",),
    ):
        super().__init__()
        if not 0 < low <= high <= 1:
            raise ValueError(f"need 0 < low <= high <= 1, got low={low}, high={high}")
        self.low, self.high, self.channels = low, high, tuple(channels)
        self.token = nn.Parameter(torch.zeros(n_site_features))
        self.head = MLP(local_dim, [hidden], N_ELEMENTS)

    def choose(self, site_mask: torch.Tensor, *, random: bool) -> torch.Tensor:
        """Which real sites are masked: (B, P) bool, at least one per crystal.

        ``random=False`` draws from a generator seeded afresh at every call,
        so validation masks the same sites every epoch without favouring the
        first sites of a file (often the cations).
        """
        device = site_mask.device
        generator = None if random else torch.Generator(device=device).manual_seed(0)
        n_sites = site_mask.sum(1)
        u = torch.rand(len(n_sites), device=device, generator=generator)
        keys = torch.rand(site_mask.shape, device=device, generator=generator)
        fraction = self.low + u * (self.high - self.low)
        n_masked = torch.ceil(fraction * n_sites).clamp(min=1)
        rank = keys.masked_fill(~site_mask, float("inf")).argsort(1).argsort(1)
        return site_mask & (rank < n_masked[:, None])

    def forward(
        self, encoder: nn.Module, batch: dict[str, torch.Tensor], *, random: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and the accuracy (percent) of the predicted elements.

        Parameters
        ----------
        encoder : SiteNetEncoder
            The encoder being pretrained.
        batch : dict of tensors
            A padded batch (:func:`skdim.data.collate_sitenet`).
        random : bool
            Random masks (training) or fixed ones (validation).

        Returns
        -------
        loss : tensor, scalar
        accuracy : tensor, scalar (detached)
            Percentage of masked sites whose element is predicted right.
        """
        site_mask = batch["site_mask"]
        masked = self.choose(site_mask, random=random)
        raw_token = self.token * encoder.site_std + encoder.site_mean  # the token, unscaled
        corrupted = {k: v for k, v in batch.items() if k != "pair_embedding"}
        corrupted["site_features"] = torch.where(
            masked[..., None], raw_token.to(batch["site_features"].dtype), batch["site_features"]
        )
        corrupted["atomic_numbers"] = batch["atomic_numbers"].masked_fill(masked, 0)
        distances = batch["pair_features"][..., 0]
        own_copy = masked[..., None] & (distances <= 1e-4)
        corrupted["pair_mask"] = batch["pair_mask"] & ~own_copy
        if "coulomb" in self.channels:
            c = self.channels.index("coulomb")
            atom_masked = torch.gather(masked, 1, batch["neighbor_site"])  # (B, J)
            hidden = masked[..., None] | atom_masked[:, None, :]
            pairs = batch["pair_features"].clone()
            pairs[..., c] = torch.where(hidden, encoder.pair_mean[c], pairs[..., c])
            corrupted["pair_features"] = pairs
        local, _ = encoder.encode_sites(**corrupted)
        logits = self.head(local[masked]).float()
        target = batch["atomic_numbers"][masked]
        loss = cross_entropy(logits, target)
        accuracy = (logits.detach().argmax(-1) == target).float().mean() * 100
        return loss, accuracy


#: The pretext tasks by name, built by :func:`build_pretext`.
PRETEXT_TASKS = ("strain", "masked")


def build_pretext(name: str, encoder: nn.Module, channels: tuple[str, ...]) -> nn.Module:
    """A pretext task of :data:`PRETEXT_TASKS` sized for ``encoder``.

    Parameters
    ----------
    name : {"strain", "masked"}
        The task.
    encoder : SiteNetEncoder
        The encoder it trains.
    channels : tuple of str
        Names of the pair channels.

    Returns
    -------
    StrainTask or MaskedSiteTask
    """
    if name == "strain":
        return StrainTask(encoder.embedding_dim, channels=channels)
    if name == "masked":
        return MaskedSiteTask(encoder.local_dim, encoder.site_mean.shape[0], channels=channels)
    raise ValueError(f"pretext task must be one of {PRETEXT_TASKS}, got {name!r}")
