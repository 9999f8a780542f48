"""The Site-Net encoder: site and bond embeddings, attention blocks, pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skdim.nn.attention import SiteAttention
from skdim.nn.layers import MLP, Linear, masked_pool

#: Named architectures. "paper": the supervised Site-Net of Moran et al. (2023,
#: PaperParams). "dim": the compact encoder of the Deep InfoMax paper (2025).
PRESETS: dict[str, dict] = {
    "paper": {
        "element_embedding_dim": 92,
        "n_heads": 3,
        "site_dim_per_head": 30,
        "pair_dim_per_head": 16,
        "attention_hidden": (225,),
        "value_hidden": (),
        "n_blocks": 2,
        "local_dim": None,
        "pre_pool": (94,),
        "pooling": "mean",
        "post_pool": (200, 200, 200),
        "embedding_dim": None,
        "distance_cutoff": None,
    },
    "dim": {
        "element_embedding_dim": 0,
        "n_heads": 1,
        "site_dim_per_head": 64,
        "pair_dim_per_head": 64,
        "attention_hidden": (64,),
        "value_hidden": (64,),
        "n_blocks": 1,
        "local_dim": 32,
        "pre_pool": (64, 128),
        "pooling": "mean",
        "post_pool": (64,),
        "embedding_dim": 64,
        "distance_cutoff": None,
    },
}


def encoder_config(preset: str = "dim", **overrides) -> dict:
    """Architecture settings of a named preset with some of them replaced.

    Parameters
    ----------
    preset : {"dim", "paper"}, default="dim"
        Name of a preset in :data:`PRESETS`.
    **overrides
        Settings to replace, named as the keyword arguments of
        :class:`SiteNetEncoder`.

    Returns
    -------
    dict
        Keyword arguments of :class:`SiteNetEncoder` (all but the input widths).

    Raises
    ------
    ValueError
        For an unknown preset or setting name.

    Examples
    --------
    >>> from skdim.nn import SiteNetEncoder, encoder_config
    >>> config = encoder_config("paper", n_blocks=1)
    >>> config["n_heads"], config["n_blocks"]
    (3, 1)
    >>> SiteNetEncoder(**config).embedding_dim  # the last post-pool width
    200
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    unknown = set(overrides) - set(PRESETS[preset])
    if unknown:
        raise ValueError(f"unknown encoder settings {sorted(unknown)}")
    return {**PRESETS[preset], **overrides}


class SiteNetEncoder(nn.Module):
    """Site-Net: crystal embedding from unique sites attending over a supercell.

    Site features and pair features are standardized with buffers fitted on
    training data (:meth:`set_feature_scaling`), embedded by one
    Linear -> mish -> LayerNorm layer each, passed through ``n_blocks``
    :class:`SiteAttention` blocks whose site outputs are concatenated, and
    optionally projected to a ``local_dim`` bottleneck: the per-site (local)
    representation. A per-site MLP, masked pooling over the crystal's unique
    sites and a crystal-level MLP then give the crystal embedding.

    Parameters
    ----------
    n_site_features : int, default=8
        F, site feature width.
    n_pair_features : int, default=1
        C, pair feature channels (channel 0 is the distance in Angstrom).
    element_embedding_dim : int, default=0
        Width of a learned embedding of the atomic number (0: none).
    n_heads, site_dim_per_head, pair_dim_per_head : int
        Heads and widths; sites are n_heads * site_dim_per_head wide.
    attention_hidden, value_hidden : sequence of int
        Hidden widths of the logit and value MLPs.
    n_blocks : int
        Attention blocks.
    local_dim : int or None
        Width of a plain Linear bottleneck on the site representation.
    pre_pool, post_pool : sequence of int
        Widths of the per-site and crystal-level MLPs.
    pooling : {"mean", "max"}
        Pooling over unique sites.
    embedding_dim : int or None
        Width of a final plain Linear layer giving the embedding (None: the
        last post-pool layer is the embedding).
    distance_cutoff : float or None
        If set, atoms farther than this (Angstrom) are not attended to.

    Attributes
    ----------
    config : dict
        The constructor arguments, so the architecture can be saved and rebuilt.
    local_dim : int
        Width of the site representation.
    embedding_dim : int
        Width of the crystal embedding.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNetEncoder
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> encoder = SiteNetEncoder(n_site_features=8, n_pair_features=1)  # the "dim" preset
    >>> encoder(**batch).shape  # (B, embedding_dim)
    torch.Size([2, 64])
    >>> local, summary = encoder.encode_sites(**batch)
    >>> local.shape, summary.shape  # (B, P, local_dim), (B, P, summary_dim)
    (torch.Size([2, 2, 32]), torch.Size([2, 2, 64]))
    """

    def __init__(
        self,
        n_site_features: int = 8,
        n_pair_features: int = 1,
        *,
        element_embedding_dim: int = 0,
        n_heads: int = 1,
        site_dim_per_head: int = 64,
        pair_dim_per_head: int = 64,
        attention_hidden: Sequence[int] = (64,),
        value_hidden: Sequence[int] = (64,),
        n_blocks: int = 1,
        local_dim: int | None = 32,
        pre_pool: Sequence[int] = (64, 128),
        pooling: str = "mean",
        post_pool: Sequence[int] = (64,),
        embedding_dim: int | None = 64,
        distance_cutoff: float | None = None,
    ):
        super().__init__()
        #: Constructor arguments, so the architecture can be saved and rebuilt.
        self.config = {
            "n_site_features": n_site_features,
            "n_pair_features": n_pair_features,
            "element_embedding_dim": element_embedding_dim,
            "n_heads": n_heads,
            "site_dim_per_head": site_dim_per_head,
            "pair_dim_per_head": pair_dim_per_head,
            "attention_hidden": tuple(attention_hidden),
            "value_hidden": tuple(value_hidden),
            "n_blocks": n_blocks,
            "local_dim": local_dim,
            "pre_pool": tuple(pre_pool),
            "pooling": pooling,
            "post_pool": tuple(post_pool),
            "embedding_dim": embedding_dim,
            "distance_cutoff": distance_cutoff,
        }
        site_dim, pair_dim = n_heads * site_dim_per_head, n_heads * pair_dim_per_head
        self.register_buffer("site_mean", torch.zeros(n_site_features))
        self.register_buffer("site_std", torch.ones(n_site_features))
        self.register_buffer("pair_mean", torch.zeros(n_pair_features))
        self.register_buffer("pair_std", torch.ones(n_pair_features))
        self.element_embedding = (
            nn.Embedding(119, element_embedding_dim) if element_embedding_dim else None
        )
        self.site_in = MLP(n_site_features + element_embedding_dim, [site_dim])
        self.pair_in = MLP(n_pair_features, [pair_dim])
        self.blocks = nn.ModuleList(
            SiteAttention(
                site_dim,
                pair_dim,
                n_heads,
                site_dim_per_head,
                attention_hidden,
                value_hidden,
                update_pairs=k < n_blocks - 1,  # the last block's bond outputs go unused
            )
            for k in range(n_blocks)
        )
        self.summary_dim = n_blocks * site_dim
        self.bottleneck = Linear(self.summary_dim, local_dim) if local_dim else None
        self.local_dim = local_dim or self.summary_dim
        self.pre_pool = MLP(self.local_dim, pre_pool)
        self.post_pool = MLP(self.pre_pool.out_dim, post_pool)
        self.project = Linear(self.post_pool.out_dim, embedding_dim) if embedding_dim else None
        self.embedding_dim = embedding_dim or self.post_pool.out_dim
        self.pooling = pooling
        self.distance_cutoff = distance_cutoff

    def set_feature_scaling(self, site_mean, site_std, pair_mean, pair_std) -> None:
        """Store fitted per-feature means and standard deviations.

        Parameters
        ----------
        site_mean, site_std : array-like of shape (F,)
            Mean and standard deviation of each site feature.
        pair_mean, pair_std : array-like of shape (C,)
            Mean and standard deviation of each pair channel.

        See Also
        --------
        skdim.data.feature_scaling : Computes them from featurized inputs.
        """
        for name, value in zip(
            ("site_mean", "site_std", "pair_mean", "pair_std"),
            (site_mean, site_std, pair_mean, pair_std),
        ):
            getattr(self, name).copy_(torch.as_tensor(value))

    def encode_sites(
        self,
        site_features: torch.Tensor,
        pair_features: torch.Tensor,
        neighbor_site: torch.Tensor,
        site_mask: torch.Tensor,
        pair_mask: torch.Tensor,
        atomic_numbers: torch.Tensor | None = None,
        pair_embedding: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-site representations.

        Parameters
        ----------
        site_features : tensor of shape (B, P, F), raw
        pair_features : tensor of shape (B, P, J, C), raw; channel 0 distance
        neighbor_site : long tensor of shape (B, J)
        site_mask : bool tensor of shape (B, P)
        pair_mask : bool tensor of shape (B, P, J)
        atomic_numbers : long tensor of shape (B, P), optional
            Needed when ``element_embedding_dim > 0``.
        pair_embedding : tensor of shape (B, P, J, pair_dim), optional
            Output of :meth:`embed_pairs` for these pair features, if already
            computed.

        Returns
        -------
        local : tensor of shape (B, P, local_dim)
            The site representation (after the bottleneck, if any).
        summary : tensor of shape (B, P, summary_dim)
            Concatenated block outputs (before the bottleneck).
        """
        x = (site_features - self.site_mean) / self.site_std
        if self.element_embedding is not None:
            x = torch.cat([x, self.element_embedding(atomic_numbers)], dim=-1)
        sites = self.site_in(x)
        pairs = self.embed_pairs(pair_features) if pair_embedding is None else pair_embedding
        if self.distance_cutoff is not None:
            pair_mask = pair_mask & (pair_features[..., 0] <= self.distance_cutoff)
        outputs = []
        for block in self.blocks:
            sites, pairs, _ = block(sites, pairs, neighbor_site, pair_mask)
            outputs.append(sites)
        summary = torch.cat(outputs, dim=-1)
        local = self.bottleneck(summary) if self.bottleneck is not None else summary
        return local * site_mask[..., None], summary

    def embed_pairs(self, pair_features: torch.Tensor) -> torch.Tensor:
        """Standardized, embedded pair features of the first block.

        Parameters
        ----------
        pair_features : tensor of shape (B, P, J, C)
            Raw pair features.

        Returns
        -------
        tensor of shape (B, P, J, pair_dim)
        """
        return self.pair_in((pair_features - self.pair_mean) / self.pair_std)

    def pool(self, local: torch.Tensor, site_mask: torch.Tensor) -> torch.Tensor:
        """Per-site MLP then masked pooling, before the crystal-level MLP.

        Parameters
        ----------
        local : tensor of shape (B, P, local_dim)
            Site representations (:meth:`encode_sites`).
        site_mask : bool tensor of shape (B, P)

        Returns
        -------
        tensor of shape (B, pre_pool[-1])
            The pooled representation (what ``DIMPretrainer(embedding="pooled")``
            returns).
        """
        return masked_pool(self.pre_pool(local), site_mask, self.pooling)

    def readout(
        self, local: torch.Tensor, site_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crystal embedding from site representations.

        Parameters
        ----------
        local : tensor of shape (B, P, local_dim)
            Site representations (:meth:`encode_sites`).
        site_mask : bool tensor of shape (B, P)

        Returns
        -------
        embedding : tensor of shape (B, embedding_dim)
        hidden : tensor of shape (B, post_pool[-1])
            Output of the crystal-level MLP (before the final projection).
        """
        hidden = self.post_pool(self.pool(local, site_mask))
        return (self.project(hidden) if self.project is not None else hidden), hidden

    def forward(
        self,
        site_features: torch.Tensor,
        pair_features: torch.Tensor,
        neighbor_site: torch.Tensor,
        site_mask: torch.Tensor,
        pair_mask: torch.Tensor,
        atomic_numbers: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Crystal embeddings of a padded batch.

        Parameters
        ----------
        site_features, pair_features, neighbor_site, site_mask, pair_mask, atomic_numbers
            The batch of :func:`skdim.data.collate_sitenet` (shapes as in
            :meth:`encode_sites`).

        Returns
        -------
        tensor of shape (B, embedding_dim)
        """
        local, _ = self.encode_sites(
            site_features, pair_features, neighbor_site, site_mask, pair_mask, atomic_numbers
        )
        return self.readout(local, site_mask)[0]
