"""Featurization settings: their defaults and their validation."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from skdim._elements import DEFAULT_SITE_PROPERTIES, property_table
from skdim._pairs import PAIR_FEATURES


@dataclass(frozen=True)
class FeaturizationSettings:
    """The five featurization settings, checked and normalized when built.

    The one place their defaults are written: ``featurize``,
    ``featurize_structure``, ``featurize_to_store``, the estimators and the
    command line take theirs from :data:`DEFAULTS`.

    Raises
    ------
    ValueError
        On construction, naming the setting and its value.
    """

    max_atoms: int = 50
    supercell: str = "cubic"
    site_properties: tuple[str, ...] = DEFAULT_SITE_PROPERTIES
    pair_features: tuple[str, ...] = ("distance",)
    max_sites: int | None = 500

    def __post_init__(self) -> None:
        checked = check_params(
            self.max_atoms,
            self.supercell,
            self.site_properties,
            self.pair_features,
            self.max_sites,
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def as_dict(self) -> dict:
        """The settings as keyword arguments of ``featurize``."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def check_params(max_atoms, supercell, site_properties, pair_features, max_sites) -> dict:
    """The settings as featurization uses them (tuples, ints), after checking each.

    Raises
    ------
    ValueError
        Naming the setting and its value.
    """
    if not isinstance(max_atoms, (int, np.integer)) or max_atoms < 1:
        raise ValueError(f"max_atoms must be a positive integer, got {max_atoms!r}")
    if supercell not in ("cubic", "primitive"):
        raise ValueError(f"supercell must be 'cubic' or 'primitive', got {supercell!r}")
    pair_features = tuple(pair_features)
    if not pair_features or pair_features[0] != "distance":
        raise ValueError(f"pair_features must start with 'distance', got {pair_features}")
    unknown = set(pair_features) - set(PAIR_FEATURES)
    if unknown or len(set(pair_features)) != len(pair_features):
        raise ValueError(f"pair_features must be distinct names from {PAIR_FEATURES}")
    if max_sites is not None and max_sites < 1:
        raise ValueError(f"max_sites must be None or a positive integer, got {max_sites!r}")
    site_properties = tuple(site_properties)
    property_table(site_properties)  # raises on unknown names
    return {
        "max_atoms": int(max_atoms),
        "supercell": supercell,
        "site_properties": site_properties,
        "pair_features": pair_features,
        "max_sites": max_sites,
    }


#: The default featurization (what an estimator's None settings mean, unless
#: its pretrained model says otherwise).
DEFAULTS = FeaturizationSettings()
#: :data:`DEFAULTS` as a dict.
FEATURIZATION_DEFAULTS = DEFAULTS.as_dict()


class FeaturizedInputs(list):
    """What :func:`skdim.featurize.featurize` returns: a list that knows its settings.

    SiteNetInput records do not carry their featurization settings, so the
    estimators can tell another ``max_atoms`` or another site property of the
    same width only from this attribute; a plain list (a slice, a Series)
    made from it no longer has it.

    Parameters
    ----------
    items : iterable of SiteNetInput or None
        The featurized structures.
    featurization : dict
        The settings that made them (as :func:`check_params` returns them).
    """

    def __init__(self, items=(), featurization: dict | None = None):
        super().__init__(items)
        self.featurization = featurization


def check_same_settings(found: dict | None, settings: dict, what: str = "X") -> None:
    """Refuse inputs featurized with other settings, naming the first that differs.

    Parameters
    ----------
    found : dict or None
        The settings the inputs were made with (None: unknown, not checked).
    settings : dict
        The estimator's settings.
    what : str, default="X"
        How the message names the inputs.

    Raises
    ------
    ValueError
        Naming the setting and both values.
    """
    if found is None:
        return
    for name, value in settings.items():
        other = found.get(name)
        other = tuple(other) if isinstance(other, list) else other
        mine = tuple(value) if isinstance(value, list) else value
        if other != mine:
            raise ValueError(
                f"{what} was featurized with {name}={other!r}, but this estimator uses "
                f"{name}={mine!r}: featurize with the estimator's settings "
                "(featurize(structures, **model.featurization_)) or pass the structures"
            )


def check_featurized(inputs: list, settings: dict) -> None:
    """Refuse featurized inputs that another featurization produced.

    SiteNetInput does not record its settings: this checks the feature widths
    and what the supercell size reveals. A supercell of several images holds
    at most ``max_atoms`` atoms, so one with more was built with a larger
    ``max_atoms`` (a smaller one cannot be told from the input alone), and
    ``supercell="primitive"`` never has more than one image.
    """
    n_site, n_pair = len(settings["site_properties"]), len(settings["pair_features"])
    max_atoms, supercell = settings["max_atoms"], settings["supercell"]
    for index, x in enumerate(inputs):
        if x.site_features.shape[1] != n_site or x.pair_features.shape[-1] != n_pair:
            raise ValueError(
                f"featurized X[{index}] has {x.site_features.shape[1]} site features and "
                f"{x.pair_features.shape[-1]} pair channels; this estimator expects "
                f"{n_site} and {n_pair} (site_properties, pair_features)"
            )
        if x.n_images > 1 and (supercell == "primitive" or x.n_neighbors > max_atoms):
            raise ValueError(
                f"featurized X[{index}] has a supercell of {x.n_images} cells and "
                f"{x.n_neighbors} atoms, which this estimator's featurization "
                f"(max_atoms={max_atoms}, supercell={supercell!r}) never builds: it was "
                "featurized with other settings; featurize with the estimator's "
                "max_atoms and supercell"
            )
