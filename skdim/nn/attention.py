"""The Site-Net attention block."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skdim.nn.activation import mish_layer_norm
from skdim.nn.layers import MLP, LayerNorm, PairwiseLinear, masked_softmax


class SiteAttention(nn.Module):
    """One Site-Net attention block: unique sites attend over supercell atoms.

    Every bond (site i, supercell atom j) is described by concat(x_i, x_u(j),
    e_ij), where u(j) is the unit-cell site of atom j. Three MLPs read it: one
    gives per-head attention logits (softmax over j), one the values, and one
    the bond features passed to the next block. Their first layers are fused
    into one factorized :class:`PairwiseLinear`.

    Unlike the original, whose heads share one value vector, each head has its
    own values (the usual transformer choice), so heads can carry different
    information at a cost of ``n_heads`` times the value width per pair.

    Parameters
    ----------
    site_dim : int
        Width of the site features x (also the output width).
    pair_dim : int
        Width of the bond features e (also the output width).
    n_heads : int
        Attention heads.
    head_dim : int
        Value width per head.
    attention_hidden : sequence of int
        Hidden widths of the logit MLP (at least one).
    value_hidden : sequence of int, default=()
        Hidden widths of the value MLP before its output layer.
    update_pairs : bool, default=True
        Compute new bond features. The last block of an encoder does not (its
        pair outputs would go unused), and then has no bond normalization:
        every parameter gets a gradient, so DistributedDataParallel needs no
        ``find_unused_parameters``. Weights saved before this option existed
        (with that normalization) still load: its entries are dropped.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import SiteAttention
    >>> block = SiteAttention(site_dim=8, pair_dim=4, n_heads=2, head_dim=3,
    ...                       attention_hidden=[16])
    >>> B, P, J = 2, 3, 5  # crystals, unit-cell sites, supercell atoms
    >>> sites, pairs = torch.randn(B, P, 8), torch.randn(B, P, J, 4)
    >>> neighbor_site = torch.randint(0, P, (B, J))
    >>> pair_mask = torch.ones(B, P, J, dtype=torch.bool)
    >>> sites, pairs, weights = block(sites, pairs, neighbor_site, pair_mask)
    >>> sites.shape, pairs.shape, weights.shape
    (torch.Size([2, 3, 8]), torch.Size([2, 3, 5, 4]), torch.Size([2, 3, 5, 2]))
    >>> bool(torch.allclose(weights.sum(2), torch.ones(B, P, 2)))  # softmax over atoms j
    True
    """

    def __init__(
        self,
        site_dim: int,
        pair_dim: int,
        n_heads: int,
        head_dim: int,
        attention_hidden: Sequence[int],
        value_hidden: Sequence[int] = (),
        update_pairs: bool = True,
    ):
        super().__init__()
        if not attention_hidden:
            raise ValueError("attention_hidden needs at least one width")
        value_widths = [*value_hidden, n_heads * head_dim]
        self.widths = [attention_hidden[0], value_widths[0], pair_dim]
        self.n_heads, self.head_dim = n_heads, head_dim
        self.update_pairs = update_pairs
        # the first layer keeps its bond rows either way (same shapes in every block)
        self.first = PairwiseLinear(site_dim, pair_dim, sum(self.widths))
        normed = self.widths if update_pairs else self.widths[:2]
        self.first_norms = nn.ModuleList(LayerNorm(w) for w in normed)
        self.logits = MLP(attention_hidden[0], attention_hidden[1:], n_heads)
        self.values = MLP(value_widths[0], value_widths[1:])
        self.site_update = MLP(n_heads * head_dim, [site_dim])

    def forward(
        self,
        sites: torch.Tensor,
        pairs: torch.Tensor,
        neighbor_site: torch.Tensor,
        pair_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Update site and bond features.

        Parameters
        ----------
        sites : tensor of shape (B, P, site_dim)
        pairs : tensor of shape (B, P, J, pair_dim)
        neighbor_site : long tensor of shape (B, J)
        pair_mask : bool tensor of shape (B, P, J)
            True for bonds that may be attended to.

        Returns
        -------
        sites : tensor of shape (B, P, site_dim)
        pairs : tensor of shape (B, P, J, pair_dim), or None
            None when the block was built with ``update_pairs=False``.
        weights : tensor of shape (B, P, J, n_heads)
            Attention weights (0 on masked bonds).
        """
        update_pairs = self.update_pairs
        widths = self.widths if update_pairs else self.widths[:2]
        hidden = self.first(sites, pairs, neighbor_site, n_out=sum(widths))
        outputs = [
            mish_layer_norm(h, norm)
            for norm, h in zip(self.first_norms, hidden.split(widths, dim=-1))
        ]
        logit_in, value_in = outputs[:2]
        pair_out = outputs[2] if update_pairs else None
        weights = masked_softmax(self.logits(logit_in), pair_mask[..., None], dim=2)
        values = self.values(value_in).unflatten(-1, (self.n_heads, self.head_dim))
        pooled = torch.einsum("bpjh,bpjhd->bphd", weights.to(values.dtype), values)
        return self.site_update(pooled.flatten(-2)), pair_out, weights

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before update_pairs=False dropped the unused bond normalization
        if not self.update_pairs:
            for key in LEGACY_PAIR_NORM:
                state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


#: Parameters of a block with ``update_pairs=False`` in weights saved before that
#: option existed (the unused bond normalization), after ``first_norms.1.bias``.
LEGACY_PAIR_NORM = ("first_norms.2.weight", "first_norms.2.bias")


def legacy_parameter_names(module: nn.Module) -> list[str]:
    """Parameter names of ``module`` as they were before the unused bond norm went.

    ``named_parameters()`` of a module built by an older skdim: the names of
    today's, with :data:`LEGACY_PAIR_NORM` back in each block that has
    ``update_pairs=False``. Used to map an optimizer state saved then (a
    checkpoint of a run in progress) onto today's parameters.

    Parameters
    ----------
    module : torch.nn.Module
        Any module holding :class:`SiteAttention` blocks.

    Returns
    -------
    list of str
    """
    pairless = {
        name + "." if name else ""
        for name, block in module.named_modules()
        if isinstance(block, SiteAttention) and not block.update_pairs
    }
    names = []
    for name, _ in module.named_parameters():
        names.append(name)
        prefix = name.removesuffix("first_norms.1.bias")
        if prefix != name and prefix in pairless:
            names += [prefix + key for key in LEGACY_PAIR_NORM]
    return names
