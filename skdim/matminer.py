"""matminer adapters: DIM embeddings and pooled site features as matminer featurizers.

Not imported by ``skdim/__init__``; use ``from skdim.matminer import DIMFeaturizer``
(or ``SiteStatsFeaturizer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matminer.featurizers.base import BaseFeaturizer

from skdim._elements import DEFAULT_SITE_PROPERTIES
from skdim._featurize_settings import DEFAULTS
from skdim._matminer_rows import SITENET_BIBTEX, batched_rows, check_flags, entries_of
from skdim.pretrained import resolve_saved_model
from skdim.pretrainer import DIMPretrainer
from skdim.site_stats import STATISTICS, SiteFeatureStats


class DIMFeaturizer(BaseFeaturizer):
    """Crystal embeddings of a pretrained Site-Net DIM encoder, for matminer.

    ``featurize_many`` and ``featurize_dataframe`` featurize every structure
    once and run the network on batches (not one forward pass per row).
    ``n_jobs`` is always 1: matminer's process pool would copy the model into
    every worker and cannot fork after CUDA is initialized; the batched
    inference is faster anyway.

    Parameters
    ----------
    pretrained : str, fitted DIMPretrainer, FrozenEstimator or None, default=None
        A directory written by ``DIMPretrainer.save`` or a fitted pretrainer.
        With None, :meth:`fit` pretrains a ``DIMPretrainer(**pretrainer_params)``
        on the structures it is given (self-supervised: no labels).
    device : str or None, default=None
        Device for inference with a saved model (None: the saved device, or
        CPU without a GPU).
    pretrainer_params : dict or None, default=None
        Parameters of the DIMPretrainer trained by :meth:`fit`.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdim.datasets import get_data_home, load_structures_csv
    >>> from skdim.matminer import DIMFeaturizer
    >>> X, labels = load_structures_csv(get_data_home() / "mp100.csv.gz")
    >>> df = pd.DataFrame({"structure": X, "e_form": labels["e_form_per_atom"]})

    With a pretrainer saved by ``DIMPretrainer.save("dim_model")``:

    >>> featurizer = DIMFeaturizer("dim_model")
    >>> df = featurizer.featurize_dataframe(df, "structure")  # doctest: +SKIP
    >>> df.filter(like="skdim_dim").shape  # doctest: +SKIP
    (100, 128)

    matminer asks every featurizer for the papers to cite:

    >>> [entry.split("{")[1].split(",")[0] for entry in DIMFeaturizer().citations()]
    ['moran2023sitenet', 'moran2025dim', 'dunn2020matbench']
    """

    def __init__(self, pretrained=None, device: str | None = None, pretrainer_params=None):
        self.pretrained = pretrained
        self.device = device
        self.pretrainer_params = pretrainer_params

    @property
    def n_jobs(self) -> int:
        """Always 1 (inference is batched in the main process)."""
        return 1

    def set_n_jobs(self, n_jobs: int) -> None:
        """Ignored: this featurizer never uses a process pool (see class docs).

        Parameters
        ----------
        n_jobs : int
            Ignored.
        """

    def fit(self, X: Any, y: Any = None, **fit_kwargs: Any) -> DIMFeaturizer:
        """Load the pretrained model, or pretrain one on X without labels.

        Parameters
        ----------
        X : list, Series, array or DataFrame of structures
            Used only when ``pretrained`` is None.
        y : ignored
            Labels are never used.
        **fit_kwargs
            Ignored (matminer's ``fit`` signature).

        Returns
        -------
        self
        """
        if self.pretrained is None:
            structures = entries_of(X)
            params = {"verbose": 0, **(self.pretrainer_params or {})}
            self.pretrainer_ = DIMPretrainer(**params).fit(structures)
        else:
            self.pretrainer_ = self._load()
        return self

    def _load(self) -> DIMPretrainer:
        model = getattr(self.pretrained, "estimator", self.pretrained)
        if isinstance(model, DIMPretrainer):
            model.check_is_fitted()
            return model
        return DIMPretrainer.load(resolve_saved_model(self.pretrained), device=self.device)

    def _model(self) -> DIMPretrainer:
        if getattr(self, "pretrainer_", None) is None:
            if self.pretrained is None:
                raise ValueError("no pretrained model: pass pretrained=... or call fit first")
            self.pretrainer_ = self._load()
        return self.pretrainer_

    def featurize(self, structure) -> list[float]:
        """Embedding of one structure.

        Parameters
        ----------
        structure : pymatgen Structure

        Returns
        -------
        list of float
            One value per :meth:`feature_labels` entry.
        """
        return self.featurize_many([structure], pbar=False)[0]

    def featurize_many(
        self, entries, ignore_errors: bool = False, return_errors: bool = False, pbar=True
    ) -> list[list]:
        """Embeddings of many structures, computed in batches.

        Parameters
        ----------
        entries : list, Series, array or DataFrame of structures (or 1-tuples)
        ignore_errors : bool, default=False
            Give a row of NaN for a structure that cannot be featurized
            instead of raising.
        return_errors : bool, default=False
            Append the error message to each row (needs ``ignore_errors``).
        pbar : bool or dict, default=True
            Progress bar for featurization.

        Returns
        -------
        list of lists
        """
        check_flags(ignore_errors, return_errors)
        structures = entries_of(entries)
        if not structures:
            return []
        model = self._model()
        return batched_rows(
            structures,
            model.featurization_,
            model.transform,
            len(self.feature_labels()),
            ignore_errors=ignore_errors,
            return_errors=return_errors,
            pbar=pbar,
        )

    def transform(self, X) -> np.ndarray:
        """Embeddings as a float32 array; errors give NaN rows.

        Parameters
        ----------
        X : list, Series, array or DataFrame of structures

        Returns
        -------
        ndarray of shape (n, d), float32
        """
        return np.asarray(self.featurize_many(X, ignore_errors=True, pbar=False), np.float32)

    def feature_labels(self) -> list[str]:
        """Column names, one per embedding dimension.

        Returns
        -------
        list of str
            ``skdim_dim0``, ``skdim_dim1``, ...
        """
        return [f"skdim_{name}" for name in self._model().get_feature_names_out()]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Same as :meth:`feature_labels`, for scikit-learn.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str objects
        """
        return np.array(self.feature_labels(), dtype=object)

    def citations(self) -> list[str]:
        """BibTeX of Site-Net, Deep InfoMax for materials, and matbench.

        Returns
        -------
        list of str
            One BibTeX entry each.
        """
        return [
            SITENET_BIBTEX,
            "@article{moran2025dim, title={Establishing Deep InfoMax as an effective "
            "self-supervised learning methodology in materials informatics}, author={Moran, "
            "Michael and Gaultois, Michael W and Gusev, Vladimir V and Antypov, Dmytro and "
            "Rosseinsky, Matthew J}, journal={Digital Discovery}, year={2025}, "
            "doi={10.1039/D4DD00202D}}",
            "@article{dunn2020matbench, title={Benchmarking materials property prediction "
            "methods: the Matbench test set and Automatminer reference algorithm}, "
            "author={Dunn, Alexander and Wang, Qi and Ganose, Alex and Dopp, Daniel and "
            "Jain, Anubhav}, journal={npj Computational Materials}, volume={6}, "
            "pages={138}, year={2020}, doi={10.1038/s41524-020-00406-3}}",
        ]

    def implementors(self) -> list[str]:
        """The skdim developers.

        Returns
        -------
        list of str
        """
        return ["The skdim developers"]


class SiteStatsFeaturizer(BaseFeaturizer):
    """Site-Net's input site features pooled over sites, for matminer.

    The features of :class:`skdim.SiteFeatureStats`: the mean, standard
    deviation, minimum and maximum over each crystal's sites of every
    elemental site feature that Site-Net reads (no network, nothing to fit).
    ``featurize_many`` and ``featurize_dataframe`` featurize all structures
    in one batch (skdim's featurization, in worker processes only for at
    least 500 structures each) rather than through matminer's process pool.

    Parameters
    ----------
    site_properties : tuple of str, default=DEFAULT_SITE_PROPERTIES
        Magpie properties used as site features.
    max_sites : int or None, default=500
        Largest primitive cell accepted.

    Examples
    --------
    >>> import pandas as pd
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.matminer import SiteStatsFeaturizer
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> featurizer = SiteStatsFeaturizer(site_properties=("Number",))
    >>> df = featurizer.featurize_dataframe(pd.DataFrame({"structure": [cscl]}), "structure")
    >>> featurizer.feature_labels()
    ['skdim_mean_Number', 'skdim_std_Number', 'skdim_min_Number', 'skdim_max_Number']
    >>> df[featurizer.feature_labels()].to_numpy().tolist()  # Cs (55) and Cl (17)
    [[36.0, 19.0, 17.0, 55.0]]
    """

    def __init__(
        self,
        site_properties: tuple[str, ...] = DEFAULT_SITE_PROPERTIES,
        max_sites: int | None = DEFAULTS.max_sites,
    ):
        self.site_properties = site_properties
        self.max_sites = max_sites

    def _transformer(self) -> SiteFeatureStats:
        return SiteFeatureStats(
            site_properties=self.site_properties, max_sites=self.max_sites, n_jobs=self.n_jobs
        )

    def featurize(self, structure) -> list[float]:
        """Pooled site features of one structure.

        Parameters
        ----------
        structure : pymatgen Structure

        Returns
        -------
        list of float
            One value per :meth:`feature_labels` entry.
        """
        return self.featurize_many([structure], pbar=False)[0]

    def featurize_many(
        self, entries, ignore_errors: bool = False, return_errors: bool = False, pbar=True
    ) -> list[list]:
        """Pooled site features of many structures, featurized in one batch.

        Parameters
        ----------
        entries : list, Series, array or DataFrame of structures (or 1-tuples)
        ignore_errors : bool, default=False
            Give a row of NaN for a structure that cannot be featurized
            instead of raising.
        return_errors : bool, default=False
            Append the error message to each row (needs ``ignore_errors``).
        pbar : bool or dict, default=True
            Progress bar for featurization.

        Returns
        -------
        list of lists
        """
        check_flags(ignore_errors, return_errors)
        structures = entries_of(entries)
        if not structures:
            return []
        settings = {
            "supercell": "primitive",  # the site features do not depend on it
            "site_properties": tuple(self.site_properties),
            "max_sites": self.max_sites,
            "n_jobs": self.n_jobs,
        }
        return batched_rows(
            structures,
            settings,
            self._transformer().fit_transform,  # of the featurized inputs
            len(self.feature_labels()),
            ignore_errors=ignore_errors,
            return_errors=return_errors,
            pbar=pbar,
        )

    def transform(self, X) -> np.ndarray:
        """Pooled site features as a float64 array; errors give NaN rows.

        Parameters
        ----------
        X : list, Series, array or DataFrame of structures

        Returns
        -------
        ndarray of shape (n, 4 F), float64
        """
        return np.asarray(self.featurize_many(X, ignore_errors=True, pbar=False), np.float64)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Same as :meth:`feature_labels`, for scikit-learn.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str objects
        """
        return np.array(self.feature_labels(), dtype=object)

    def feature_labels(self) -> list[str]:
        """Column names: ``skdim_<statistic>_<site property>``.

        Returns
        -------
        list of str
            ``skdim_mean_Number`` ... ``skdim_max_Density`` with the default
            properties.
        """
        return [f"skdim_{stat}_{name}" for stat in STATISTICS for name in self.site_properties]

    def citations(self) -> list[str]:
        """BibTeX of Site-Net (whose inputs these are) and of the Magpie data.

        Returns
        -------
        list of str
            One BibTeX entry each.
        """
        return [
            SITENET_BIBTEX,
            "@article{ward2016magpie, title={A general-purpose machine learning framework "
            "for predicting properties of inorganic materials}, author={Ward, Logan and "
            "Agrawal, Ankit and Choudhary, Alok and Wolverton, Christopher}, "
            "journal={npj Computational Materials}, volume={2}, pages={16028}, "
            "year={2016}, doi={10.1038/npjcompumats.2016.28}}",
        ]

    def implementors(self) -> list[str]:
        """The skdim developers.

        Returns
        -------
        list of str
        """
        return ["The skdim developers"]
