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


#: Strain factors of the strained negative: far enough from 1 that the copy is
#: never a plausible relaxation of the crystal (a uniform strain of 10-25 %).
STRAIN_NEGATIVE_RANGES = ((0.78, 0.9), (1.11, 1.28))


def strained_pairs(
    pair_features: torch.Tensor, scale: torch.Tensor, channels: tuple[str, ...] = ("distance",)
) -> torch.Tensor:
    """Raw pair features of each crystal uniformly strained by ``scale``.

    Parameters
    ----------
    pair_features : tensor of shape (B, P, J, C)
        Raw pair features; channel 0 is the distance in Angstrom.
    scale : tensor of shape (B,)
        Factor applied to every distance of a crystal.
    channels : tuple of str, default=("distance",)
        Names of the C channels (:data:`skdim.featurize.PAIR_FEATURES`):
        "coulomb", log(Z_i Z_j / d), moves by -log(scale), clipped as in
        featurization.

    Returns
    -------
    tensor of shape (B, P, J, C)

    Examples
    --------
    >>> import torch
    >>> from skdim.nn.negatives import strained_pairs
    >>> pairs = torch.tensor([[[[0.0], [2.0]]]])
    >>> strained_pairs(pairs, torch.tensor([1.1]))[..., 0].tolist()
    [[[0.0, 2.200000047683716]]]
    """
    if len(channels) != pair_features.shape[-1]:
        raise ValueError(f"{pair_features.shape[-1]} pair channels but names {channels}")
    out = pair_features.clone()
    view = scale.to(out.dtype).view(-1, *([1] * (out.dim() - 2)))
    for c, name in enumerate(channels):
        if name == "distance":
            out[..., c] = pair_features[..., c] * view
        elif name == "coulomb":
            out[..., c] = (pair_features[..., c] - torch.log(view)).clamp(-10.0, 10.0)
        else:
            raise ValueError(f"no strain rule for pair channel {name!r}")
    return out


def strain_negative_scales(n: int, *, random: bool, device=None) -> torch.Tensor:
    """Strain factors of the strained negatives, from :data:`STRAIN_NEGATIVE_RANGES`.

    Parameters
    ----------
    n : int
        Crystals.
    random : bool
        Draw uniformly from the two ranges (training), or alternate 0.85 and
        1.18 (validation).
    device : torch.device or None, default=None

    Returns
    -------
    tensor of shape (n,)
    """
    (low_a, high_a), (low_b, high_b) = STRAIN_NEGATIVE_RANGES
    if not random:
        return torch.tensor([0.85, 1.18], device=device).repeat((n + 1) // 2)[:n]
    u = torch.rand(n, device=device)
    expand = torch.rand(n, device=device) < 0.5
    return torch.where(expand, low_b + u * (high_b - low_b), low_a + u * (high_a - low_a))


def permuted_species(batch: dict[str, torch.Tensor], *, random: bool) -> dict[str, torch.Tensor]:
    """The batch with the species of each crystal's sites permuted among its sites.

    Geometry and composition are kept; only which site holds which species
    changes (a derangement of the real sites: random in training, a shift by
    one site otherwise). Crystals whose sites all hold one element come back
    unchanged: :func:`identical_copies` finds them.

    Parameters
    ----------
    batch : dict of tensors
        A padded batch (:func:`skdim.data.collate_sitenet`).
    random : bool
        Random derangement (training) or the fixed shift (validation).

    Returns
    -------
    dict of tensors
        The batch with ``site_features`` and ``atomic_numbers`` permuted.
    """
    site_mask = batch["site_mask"]
    n_sites = site_mask.sum(1, keepdim=True)
    rows = torch.arange(site_mask.shape[1], device=site_mask.device)[None]
    if random:  # a cyclic shift in a random order of each crystal's real sites
        keys = torch.rand(site_mask.shape, device=site_mask.device).masked_fill(~site_mask, 2.0)
        order = keys.argsort(dim=1)
        position = order.argsort(dim=1)
        successor = torch.gather(order, 1, (position + 1) % n_sites.clamp(min=1))
        source = torch.where(site_mask, successor, rows)
    else:
        source = torch.where(site_mask, (rows + 1) % n_sites.clamp(min=1), rows)
    out = dict(batch)
    out["site_features"] = torch.gather(
        batch["site_features"], 1, source[..., None].expand_as(batch["site_features"])
    )
    out["atomic_numbers"] = torch.gather(batch["atomic_numbers"], 1, source)
    return out


def composition_matched_negatives(
    batch: dict[str, torch.Tensor],
    sigma: torch.Tensor,
    *,
    random: bool,
    channels: tuple[str, ...] = ("distance",),
) -> dict[str, torch.Tensor]:
    """Three corrupted copies of a batch that keep each crystal's composition.

    1. permuted species: the species of the sites permuted among the sites,
       geometry kept (:func:`permuted_species`);
    2. strained: every distance scaled by a factor 10-25 % away from 1
       (:func:`strain_negative_scales`);
    3. partner geometry: the partner crystal's pair features and neighbour
       mask with one's own species (as the wrong-geometry copy of
       :func:`engineered_negatives`).

    None of them can be told from the crystal by its elements alone, so a
    critic has to read the arrangement of the atoms. The corruption of the
    shortcut-free objective (``SiteNetDIM(objective_fixes=True)``).

    Parameters
    ----------
    batch : dict of tensors
        A padded batch, optionally with ``pair_embedding``, which the strained
        copy drops (it is re-embedded from the strained pair features).
    sigma : long tensor of shape (B,)
        Partner crystal of each crystal (:func:`derangement`).
    random : bool
        Random copies (training) or fixed ones (validation).
    channels : tuple of str, default=("distance",)
        Names of the pair channels (see :func:`strained_pairs`).

    Returns
    -------
    dict of tensors
        3 B crystals: the permuted, strained and partner-geometry copies.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import derangement
    >>> from skdim.nn.negatives import composition_matched_negatives
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> fake = composition_matched_negatives(batch, derangement(2, random=False), random=False)
    >>> fake["atomic_numbers"][0].tolist()  # CsCl with Cs and Cl swapped
    [17, 55]
    """
    permuted = permuted_species(batch, random=random)
    strained = {k: v for k, v in batch.items() if k != "pair_embedding"}
    scale = strain_negative_scales(len(sigma), random=random, device=sigma.device)
    strained["pair_features"] = strained_pairs(batch["pair_features"], scale, channels)
    site_mask, pair_mask = batch["site_mask"], batch["pair_mask"]
    rows = partner_rows(site_mask, sigma)
    geometry = dict(batch)
    for key in ("pair_features", "pair_embedding"):
        if key in batch:
            geometry[key] = take_rows(batch[key], sigma, rows)
    geometry["pair_mask"] = site_mask[..., None] & take_rows(pair_mask, sigma, rows)
    copies = (permuted, strained, geometry)
    return {k: torch.cat([copy[k] for copy in copies]) for k in strained}


def environment_fingerprint(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """A number per crystal that equal crystals share: to find negatives equal to a positive.

    Each site's environment is summed as sum_j f(Z_i, Z_u(j), d_ij) with a
    fixed smooth f, and the crystal's fingerprint is a fixed nonlinear sum of
    its sites'. It depends neither on the order of the sites nor of the
    supercell atoms, so a corrupted copy that is the same crystal (species
    swapped in rock salt, a partner that is a duplicate) gets the same
    fingerprint up to rounding; different crystals almost never do.

    Parameters
    ----------
    batch : dict of tensors
        A padded batch (``atomic_numbers``, ``pair_features``,
        ``neighbor_site``, ``site_mask``, ``pair_mask``).

    Returns
    -------
    tensor of shape (B, 4), float64
    """
    z = batch["atomic_numbers"].double()  # (B, P)
    z_atoms = torch.gather(z, 1, batch["neighbor_site"])  # (B, J)
    d = batch["pair_features"][..., 0].double()
    mask = batch["pair_mask"].double()
    k = torch.arange(1, 5, dtype=torch.float64, device=z.device)
    pair = torch.cos(0.37 * k * z_atoms[:, None, :, None] + 1.3 * k * d[..., None])
    pair = pair * torch.exp(-d[..., None]) * mask[..., None]
    site = pair.sum(2) + torch.sin(0.61 * k * z[..., None])  # (B, P, 4)
    return (torch.tanh(site) * batch["site_mask"][..., None].double()).sum(1)


def identical_copies(
    batch: dict[str, torch.Tensor], copies: dict[str, torch.Tensor], tol: float = 1e-6
) -> torch.Tensor:
    """Which corrupted copies are the crystal they were made from (false negatives).

    Parameters
    ----------
    batch : dict of tensors
        The B crystals.
    copies : dict of tensors
        K B corrupted copies, stacked copy after copy.
    tol : float, default=1e-6
        Largest fingerprint difference, relative to the number of sites, of
        copies taken as identical.

    Returns
    -------
    bool tensor of shape (K, B)
    """
    original = environment_fingerprint(batch)
    copied = environment_fingerprint(copies).unflatten(0, (-1, len(original)))
    n_sites = batch["site_mask"].sum(1).double()[:, None]
    return ((copied - original).abs() / n_sites).amax(-1) < tol
