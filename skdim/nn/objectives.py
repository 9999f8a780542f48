"""Pretraining objectives by name: the settings of SiteNetDIM that make each one.

``DIMPretrainer(objective=...)`` picks one of :data:`OBJECTIVES`:

* ``"dim_paper"``: the Deep InfoMax objective of the original (Moran et al.,
  2025), with its shortcuts: each site's own copy (d = 0) among its
  neighbours, local negatives made of the partner crystal's elements, a
  crystal summary that includes the site it scores, and global negatives
  encoded without gradient against site codes the global loss cannot train;
* ``"dim_fixed"``: the same critics without those shortcuts: no d = 0 pairs,
  composition-matched local and global negatives (identical ones dropped),
  a leave-one-out summary, negatives encoded with gradient, and the global
  objective training the site encoder;
* ``"strain"``: regress a uniform strain of the distances
  (:class:`~skdim.nn.pretext.StrainTask`);
* ``"masked"``: predict masked sites' elements from their environment
  (:class:`~skdim.nn.pretext.MaskedSiteTask`);
* ``"dim_fixed+strain"``, ``"dim_fixed+masked"``: the shortcut-free DIM
  objective and a pretext task, summed.
"""

from __future__ import annotations

_FIXED = {
    "self_pairs": False,
    "local_negatives": "matched",
    "leave_one_out": True,
    "corruption": "matched",
    "negatives_grad": True,
    "drop_identical": True,
    "global_trains_local": True,
}

#: Objective name -> SiteNetDIM settings (the pretext tasks by name).
OBJECTIVES: dict[str, dict] = {
    "dim_paper": {},
    "dim_fixed": _FIXED,
    "strain": {"infomax": False, "pretext": ("strain",)},
    "masked": {"infomax": False, "pretext": ("masked",)},
    "dim_fixed+strain": {**_FIXED, "pretext": ("strain",)},
    "dim_fixed+masked": {**_FIXED, "pretext": ("masked",)},
}


def objective_settings(name: str) -> dict:
    """SiteNetDIM settings of a named objective.

    Parameters
    ----------
    name : str
        A key of :data:`OBJECTIVES`.

    Returns
    -------
    dict
        Keyword arguments of :class:`~skdim.nn.SiteNetDIM`.

    Examples
    --------
    >>> from skdim.nn.objectives import objective_settings
    >>> objective_settings("masked")
    {'infomax': False, 'pretext': ('masked',)}
    """
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {name!r}")
    return dict(OBJECTIVES[name])
