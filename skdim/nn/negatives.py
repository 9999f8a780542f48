"""Negatives of Deep InfoMax: partner crystals and corrupted copies of a batch.

Every crystal b of a batch gets a partner sigma[b] != b (:func:`derangement`):
the partner's sites and geometry stand in for b's in the local negatives, and
the partner's embedding is the global negative. A *corruption* (see
:class:`Corruption`; :func:`engineered_negatives` is the default) turns the
batch into corrupted copies, which :class:`~skdim.nn.SiteNetDIM` encodes into
further global negatives, as the corruption of Deep Graph Infomax does.
"""

from __future__ import annotations

from typing import Protocol

import torch


def derangement(n: int, *, random: bool, device: torch.device | None = None) -> torch.Tensor:
    """Permutation of range(n) without fixed points: crystal b is paired with sigma[b] != b.

    A random one is a cyclic shift in a random order (uniform over cyclic
    permutations); the fixed one (for validation) pairs b with b + 1.

    Parameters
    ----------
    n : int
        Crystals in the batch.
    random : bool
        Draw a random derangement (training) or return the fixed one.
    device : torch.device or None, default=None
        Device of the result.

    Returns
    -------
    long tensor of shape (n,)
        sigma, with ``sigma[b] != b`` for every b.

    Raises
    ------
    ValueError
        If n < 2: negatives would have to come from the same crystal.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import derangement
    >>> derangement(4, random=False).tolist()
    [1, 2, 3, 0]
    >>> sigma = derangement(5, random=True)
    >>> bool((sigma != torch.arange(5)).all()), sorted(sigma.tolist())
    (True, [0, 1, 2, 3, 4])
    """
    if n < 2:
        raise ValueError(
            f"Deep InfoMax needs at least 2 crystals per batch to draw negatives, got {n}"
        )
    if not random:
        return torch.roll(torch.arange(n, device=device), -1)
    order = torch.randperm(n, device=device)
    sigma = torch.empty_like(order)
    sigma[order] = torch.roll(order, -1)
    return sigma


def partner_rows(site_mask: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Row of crystal sigma[b] that stands in for site i of crystal b: i mod P_sigma[b].

    Parameters
    ----------
    site_mask : bool tensor of shape (B, P)
        Real sites of each crystal.
    sigma : long tensor of shape (B,)
        Partner crystal of each crystal (:func:`derangement`).

    Returns
    -------
    long tensor of shape (B, P)
        A real site of the partner for every row, real or padding, of b.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn.negatives import partner_rows
    >>> site_mask = torch.tensor([[True, True, True], [True, False, False]])
    >>> partner_rows(site_mask, torch.tensor([1, 0])).tolist()  # 1 site, then 3 sites
    [[0, 0, 0], [0, 1, 2]]
    """
    n_sites = site_mask.sum(1)
    rows = torch.arange(site_mask.shape[1], device=site_mask.device)
    return rows[None, :] % n_sites[sigma][:, None]


def take_rows(x: torch.Tensor, sigma: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[sigma[b], rows[b, i]]`` for a tensor x of shape (B, P, ...).

    Parameters
    ----------
    x : tensor of shape (B, P, ...)
        Per-site values of every crystal.
    sigma : long tensor of shape (B,)
        Partner crystal of each crystal.
    rows : long tensor of shape (B, P)
        Partner's row for each row (:func:`partner_rows`).

    Returns
    -------
    tensor of the shape of x
        The partners' values.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn.negatives import take_rows
    >>> x = torch.tensor([[10, 11], [20, 21]])
    >>> take_rows(x, torch.tensor([1, 0]), torch.tensor([[1, 0], [0, 0]])).tolist()
    [[21, 20], [10, 10]]
    """
    return x[sigma[:, None], rows]


class Corruption(Protocol):
    """What :class:`~skdim.nn.SiteNetDIM` calls to corrupt a batch (a typing protocol).

    A corruption is any callable ``corruption(batch, partners, *, random)``
    that returns K corrupted copies of the batch, stacked along the batch
    axis (K B crystals, the same keys; see :meth:`__call__`). The model
    encodes them, without gradients, into K negative site representations
    per crystal, each scored against the embedding of the crystal it was
    corrupted from. :func:`engineered_negatives` (K = 3) is the default; a
    new kind of negative is a new corruption, passed as
    ``SiteNetDIM(corruption=...)`` or ``DIMPretrainer(module__corruption=...)``.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNetDIM
    >>> from skdim.nn.negatives import partner_rows, take_rows
    >>> def wrong_species(batch, partners, *, random):  # K = 1: the partner's species
    ...     rows = partner_rows(batch["site_mask"], partners)
    ...     return {**batch, "site_features": take_rows(batch["site_features"], partners, rows)}
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> model = SiteNetDIM(corruption=wrong_species).eval()
    >>> embedding, scores = model(**batch)
    >>> scores.global_engineered.shape  # (K, B, P): one negative per site
    torch.Size([1, 2, 2])
    """

    def __call__(
        self, batch: dict[str, torch.Tensor], partners: torch.Tensor, *, random: bool
    ) -> dict[str, torch.Tensor]:
        """Corrupted copies of a batch.

        Parameters
        ----------
        batch : dict of tensors
            A padded batch (:func:`skdim.data.collate_sitenet`) with its
            embedded pair features (``pair_embedding``, detached): a
            corruption that changes ``pair_features`` changes or drops
            ``pair_embedding`` too.
        partners : long tensor of shape (B,)
            Partner crystal of each crystal (:func:`derangement`), which a
            corruption may take parts from.
        random : bool
            True in training; False asks for the same copies at every call
            (the validation loss).

        Returns
        -------
        dict of tensors
            The K corrupted copies, K B crystals, stacked copy after copy.
        """


def engineered_negatives(
    batch: dict[str, torch.Tensor], sigma: torch.Tensor, *, random: bool
) -> dict[str, torch.Tensor]:
    """Three corrupted copies of a batch, stacked along the batch axis (3B crystals).

    1. wrong composition: site features (and atomic numbers) of crystal
       sigma[b] on the geometry of crystal b;
    2. wrong geometry: species of b with the pair features and neighbour
       mask of sigma[b];
    3. shuffled neighbours: the unit-cell identities of the supercell atoms
       of b permuted at random over its real atoms, distances kept.

    The default :class:`Corruption` of :class:`~skdim.nn.SiteNetDIM`.

    Parameters
    ----------
    batch : dict of tensors
        A padded batch (:func:`skdim.data.collate_sitenet`), optionally with
        ``pair_embedding`` (B, P, J, pair_dim), which is corrupted like the
        pair features.
    sigma : long tensor of shape (B,)
        Partner crystal of each crystal (:func:`derangement`).
    random : bool
        Shuffle neighbours at random (training), or shift each real atom's
        identity to the next real atom (deterministic, for validation).

    Returns
    -------
    dict of tensors
        The same keys as ``batch``, each with 3 B crystals: the
        wrong-composition, wrong-geometry and shuffled-neighbour copies, in
        that order.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import derangement, engineered_negatives
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> fake = engineered_negatives(batch, derangement(2, random=False), random=False)
    >>> fake["site_features"].shape  # 3 x 2 crystals
    torch.Size([6, 2, 8])
    >>> fake["atomic_numbers"][:2, 0].tolist()  # wrong composition: Po on CsCl, Cs on Po
    [84, 55]
    """
    site_mask, pair_mask = batch["site_mask"], batch["pair_mask"]
    rows = partner_rows(site_mask, sigma)
    composition = dict(batch)
    composition["site_features"] = take_rows(batch["site_features"], sigma, rows)
    composition["atomic_numbers"] = take_rows(batch["atomic_numbers"], sigma, rows)
    geometry = dict(batch)
    for key in ("pair_features", "pair_embedding"):
        if key in batch:
            geometry[key] = take_rows(batch[key], sigma, rows)
    geometry["pair_mask"] = site_mask[..., None] & take_rows(pair_mask, sigma, rows)
    shuffled = dict(batch)
    valid = pair_mask[:, 0]  # (B, J): real supercell atoms
    if random:
        keys = torch.rand(valid.shape, device=valid.device).masked_fill(~valid, 2.0)
        order = keys.argsort(dim=1)
    else:  # shift every real atom's identity to the next real atom
        n = valid.sum(1, keepdim=True)
        j = torch.arange(valid.shape[1], device=valid.device)[None]
        order = torch.where(valid, (j + 1) % n, j)
    shuffled["neighbor_site"] = torch.gather(batch["neighbor_site"], 1, order)
    return {k: torch.cat([composition[k], geometry[k], shuffled[k]]) for k in batch}
