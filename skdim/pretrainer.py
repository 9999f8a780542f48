"""DIMPretrainer: self-supervised Deep InfoMax training of the Site-Net encoder."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from skorch import NeuralNet
from skorch.utils import to_device
from torch.utils.data import DataLoader

from skdim._base import SiteNetMixin
from skdim._featurize_settings import DEFAULTS
from skdim._params import SHARED_CONSTRAINTS
from skdim.data import PairBudgetBatchSampler, collate_sitenet, item_sizes
from skdim.nn import PRESETS, DIMLoss, SiteNetDIM
from skdim.nn.layers import masked_stats
from skdim.nn.objectives import OBJECTIVES, objective_settings

_WEIGHT = [Interval(Real, 0, None, closed="left")]


class DIMPretrainer(TransformerMixin, SiteNetMixin, NeuralNet):
    """Pretrain the Site-Net encoder on unlabeled structures with Deep InfoMax.

    ``fit(structures)`` trains without labels; ``transform(structures)``
    returns the fixed-length crystal embeddings (float32), usable by any
    scikit-learn model or to initialize :class:`SiteNetRegressor`.

    Parameters
    ----------
    module : type, default=SiteNetDIM
        The torch module class (options go through ``module__*``, e.g.
        ``module__n_blocks=2``).
    criterion : type, default=DIMLoss
        The loss class.
    preset : {"dim", "paper"}, default="dim"
        Encoder architecture (see :data:`skdim.nn.PRESETS`).
    objective : str, default="dim_paper"
        What pretraining learns (see :mod:`skdim.nn.objectives`):
        "dim_paper", the original Deep InfoMax objective; "dim_fixed", Deep
        InfoMax without the shortcuts that let it be solved from composition
        (no d = 0 pairs, composition-matched negatives with gradient, a
        leave-one-out summary); "strain", regress a uniform strain of the
        distances; "masked", predict masked sites' elements from their
        environment; "dim_fixed+strain" and "dim_fixed+masked", both summed.
    max_atoms : int, default=50
        Most atoms in each structure's supercell.
    supercell : {"cubic", "primitive"}, default="cubic"
        Supercell construction (see :func:`skdim.featurize.featurize_structure`).
    site_properties : tuple of str, default=DEFAULT_SITE_PROPERTIES
        Magpie properties used as site features.
    pair_features : tuple of str, default=("distance",)
        Pair channels.
    max_sites : int or None, default=500
        Largest primitive cell accepted.
    local_weight, global_weight : float, default=1.0
        Weights of the local and global DIM objectives.
    kl_weight : float, default=0.1
        Weight of the Gaussian KL regularizer of site and crystal codes.
    prior_weight : float, default=0.0
        Weight of adversarial prior matching (0 disables it).
    mi_estimator : {"jsd", "infonce"}, default="jsd"
        Mutual-information estimator (see :class:`skdim.nn.DIMLoss`).
    pretext_weight : float, default=1.0
        Weight of the pretext task's loss (objectives with one) beside the
        Deep InfoMax terms.
    engineered_negatives : bool, default=True
        Use the objective's corrupted copies as global negatives: for
        "dim_paper" the wrong-composition, wrong-geometry and
        shuffled-neighbour copies, for "dim_fixed" the composition-matched
        ones (species permuted among sites, strained, partner geometry).
    embedding : {"pooled", "global", "site_stats"}, default="pooled"
        What :meth:`transform` returns: "global" is the DIM crystal code g
        (64-d for the "dim" preset), the vector the global objective scores;
        "pooled" is the pooled site representation that g is computed from
        (128-d), i.e. the features before the crystal-level projection, as is
        usual for contrastive encoders; "site_stats" is the mean, standard
        deviation, minimum and maximum over sites of the site representations
        before any bottleneck (4 x 64 = 256-d), which no layer trained by the
        global objective touches.
    global_trains_local : bool or None, default=None
        Let the global objective train the local encoder; None takes the
        objective's choice (False for "dim_paper", as in the original, True
        for "dim_fixed"). With the paper's negatives, letting it through
        collapsed the local representations in our comparison on the demo
        set (docs, "Design choices").
    optimizer : type, default=torch.optim.AdamW
    lr : float, default=1e-3
        Peak learning rate.
    max_epochs : int, default=100
        Most epochs; with ``lr_schedule="plateau"`` training usually stops
        earlier, when the self-supervised validation loss has converged.
    lr_schedule : {"plateau", "constant"}, default="plateau"
        "plateau": linear warm-up over 200 steps, then ``lr`` until the
        validation loss (the training loss without a validation split) has
        not improved by 0.1 % for ``plateau_patience`` epochs; the learning
        rate is then cut to 30 %, at most twice, and the next plateau stops
        training (:class:`skdim._schedule.PlateauSchedule`). No labels are
        used. "constant": ``lr`` for ``max_epochs`` epochs.
    plateau_patience : int, default=3
        Epochs without improvement that make a plateau.
    batch_pairs : int, default=32768
        Budget of padded (site, supercell atom) pairs per batch; memory per
        step is proportional to it.
    validation_fraction : float or None, default=0.1
        Held-out fraction for the self-supervised validation loss
        (``valid_loss`` in the history; never labels).
    early_stopping : int or None, default=None
        Patience in epochs of early stopping on ``valid_loss``; the best
        epoch's weights are restored.
    checkpoint_dir : str or None, default=None
        Save weights, optimizer and history there after every epoch; a later
        ``fit`` with the same directory resumes the run.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:1" ... or "auto" (resolved when the net is
        initialized).
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Autocast precision (float16 uses a gradient scaler).
    gradient_clip : float or None, default=1.0
        Clip the gradient norm at this value.
    random_state : int, RandomState or None, default=None
        Seed of weights, batch order, noise and negatives: equal seeds give
        bitwise-identical results on CPU.
    n_jobs : int, default=1
        Processes for featurization.
    verbose : int, default=1
        What fitting prints. 0: nothing. 1: featurization progress and a
        line about every tenth of the training run, each with the optimizer
        steps done / total, the training (and validation) loss, the time
        elapsed and the time left. 2: adds the epoch table, a row per epoch.
        3: adds a bar over each epoch's batches, on a terminal only. Written
        to a file or a pipe, the output is whole lines (no carriage returns,
        bars or colours).
    callbacks : list or None, default=None
        Extra skorch callbacks.
    **kwargs
        Other skorch parameters (``optimizer__weight_decay``, ``module__*``,
        ``criterion__*`` ...).

    Attributes
    ----------
    module_ : SiteNetDIM
        The trained network; ``module_.encoder`` is the Site-Net encoder.
    history_ : skorch History
        Per-epoch losses, including ``global_mi``/``local_mi`` estimates.
    featurization_ : dict
        Featurization settings used in fit.

    References
    ----------
    .. [1] M. Moran et al., "Site-Net: using global self-attention and
       real-space supercells to capture long-range interactions in crystal
       structures", Digital Discovery 2, 1297 (2023), doi:10.1039/D3DD00005B.
    .. [2] M. Moran et al., "Establishing Deep InfoMax as an effective
       self-supervised learning methodology in materials informatics",
       Digital Discovery (2025), doi:10.1039/D4DD00202D.

    Examples
    --------
    >>> from skdim import DIMPretrainer
    >>> from skdim.datasets import get_data_home, load_structures_csv
    >>> structures, _ = load_structures_csv(get_data_home() / "mp100.csv.gz")
    >>> dim = DIMPretrainer(max_epochs=2, random_state=0, verbose=0)
    >>> embeddings = dim.fit(structures).transform(structures)  # doctest: +SKIP
    >>> embeddings.shape  # doctest: +SKIP
    (100, 128)
    """

    _min_crystals = 2
    _schedules = ("plateau",)

    @property
    def _recorded(self) -> tuple[str, ...]:
        # an unknown objective is refused by fit's parameter check, not here:
        # scikit-learn's set_params must not raise
        settings = OBJECTIVES.get(self.objective, {}) if isinstance(self.objective, str) else {}
        dim = ("local_mi", "global_mi", "kl") if settings.get("infomax", True) else ()
        return dim + tuple(f"{task}_metric" for task in settings.get("pretext", ()))

    _parameter_constraints: dict[str, list] = {
        **SHARED_CONSTRAINTS,
        "preset": [StrOptions(set(PRESETS))],
        "objective": [StrOptions(set(OBJECTIVES))],
        "pretext_weight": _WEIGHT,
        "local_weight": _WEIGHT,
        "global_weight": _WEIGHT,
        "kl_weight": _WEIGHT,
        "prior_weight": _WEIGHT,
        "mi_estimator": [StrOptions({"jsd", "infonce"})],
        "engineered_negatives": ["boolean"],
        "global_trains_local": ["boolean", None],
        "embedding": [StrOptions({"pooled", "global", "site_stats"})],
        "lr_schedule": [StrOptions({"plateau", "constant"})],
        "plateau_patience": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        module=SiteNetDIM,
        criterion=DIMLoss,
        *,
        preset: str = "dim",
        objective: str = "dim_paper",
        max_atoms: int = DEFAULTS.max_atoms,
        supercell: str = DEFAULTS.supercell,
        site_properties: tuple[str, ...] = DEFAULTS.site_properties,
        pair_features: tuple[str, ...] = DEFAULTS.pair_features,
        max_sites: int | None = DEFAULTS.max_sites,
        local_weight: float = 1.0,
        global_weight: float = 1.0,
        kl_weight: float = 0.1,
        prior_weight: float = 0.0,
        mi_estimator: str = "jsd",
        pretext_weight: float = 1.0,
        engineered_negatives: bool = True,
        global_trains_local: bool | None = None,
        embedding: str = "pooled",
        optimizer=torch.optim.AdamW,
        lr: float = 1e-3,
        max_epochs: int = 100,
        lr_schedule: str = "plateau",
        plateau_patience: int = 3,
        batch_pairs: int = 32768,
        validation_fraction: float | None = 0.1,
        early_stopping: int | None = None,
        checkpoint_dir: str | None = None,
        device: str = "cpu",
        precision: str = "float32",
        gradient_clip: float | None = 1.0,
        random_state=None,
        n_jobs: int = 1,
        verbose: int = 1,
        callbacks=None,
        **kwargs: Any,
    ):
        kwargs.setdefault("train_split", None)
        super().__init__(
            module,
            criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            **kwargs,
        )
        self.preset = preset
        self.objective = objective
        self.max_atoms = max_atoms
        self.supercell = supercell
        self.site_properties = site_properties
        self.pair_features = pair_features
        self.max_sites = max_sites
        self.local_weight = local_weight
        self.global_weight = global_weight
        self.kl_weight = kl_weight
        self.prior_weight = prior_weight
        self.mi_estimator = mi_estimator
        self.pretext_weight = pretext_weight
        self.engineered_negatives = engineered_negatives
        self.global_trains_local = global_trains_local
        self.embedding = embedding
        self.lr_schedule = lr_schedule
        self.plateau_patience = plateau_patience
        self.batch_pairs = batch_pairs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.checkpoint_dir = checkpoint_dir
        self.precision = precision
        self.gradient_clip = gradient_clip
        self.random_state = random_state
        self.n_jobs = n_jobs

    def initialize_module(self):
        """Build SiteNetDIM from the estimator's settings and fitted feature scaling.

        Returns
        -------
        self
        """
        settings = objective_settings(self.objective)
        if not self.engineered_negatives:
            settings.pop("corruption", None)
        if self.global_trains_local is not None:
            settings["global_trains_local"] = self.global_trains_local
        featurization = getattr(self, "featurization_", None) or self._resolve_featurization()
        self.module_ = self._build_module(
            {
                "preset": self.preset,
                "engineered_negatives": self.engineered_negatives,
                "prior_matching": self.prior_weight > 0,
                "pair_channels": tuple(featurization["pair_features"]),
                **settings,
            }
        )
        return self

    def initialize_criterion(self):
        """Build DIMLoss from the estimator's loss weights.

        Returns
        -------
        self
        """
        kwargs = {
            "local_weight": self.local_weight,
            "global_weight": self.global_weight,
            "kl_weight": self.kl_weight,
            "prior_weight": self.prior_weight,
            "estimator": self.mi_estimator,
            "pretext_weights": dict.fromkeys(
                objective_settings(self.objective).get("pretext", ()), self.pretext_weight
            ),
            **self.get_params_for("criterion"),
        }
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """DIM loss of a batch (labels are never used); records the MI estimates.

        Parameters
        ----------
        y_pred : tuple
            The module's output: ``(embedding, scores)``.
        y_true : tensor
            Ignored (an empty target tensor).
        X : dict of tensors, optional
            The batch (unused).
        training : bool, default=False
            Record the MI estimates under ``local_mi`` ... (training) or
            ``valid_local_mi`` ... (validation).

        Returns
        -------
        tensor
            The scalar loss.
        """
        terms = self.criterion_(y_pred[1])
        self._record(terms, training)
        return terms["loss"]

    def transform(self, X: Any) -> np.ndarray:
        """Crystal embeddings.

        Parameters
        ----------
        X : sequence of Structure, single-column DataFrame, or featurized inputs
            Structures to embed: a list, array or Series of pymatgen
            Structures, or what :func:`skdim.featurize.featurize` returns.

        Returns
        -------
        ndarray of shape (n_structures, d), float32
            d is 128 for ``embedding="pooled"``, 64 for "global" and 256 for
            "site_stats" (with the "dim" preset).
        """
        self.check_is_fitted()
        encoder = self.module_.encoder
        if self.embedding == "global":
            forward = encoder
        elif self.embedding == "pooled":

            def forward(**batch):
                return encoder.pool(encoder.encode_sites(**batch)[0], batch["site_mask"])

        elif self.embedding == "site_stats":

            def forward(**batch):
                return masked_stats(encoder.encode_sites(**batch)[1], batch["site_mask"])

        else:
            raise ValueError(
                f"embedding must be 'pooled', 'global' or 'site_stats', got {self.embedding!r}"
            )
        return self._forward_sorted(X, lambda batch: forward(**batch)).astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names ``dim0`` ... ``dim{d-1}`` of the embedding columns.

        Parameters
        ----------
        input_features : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        ndarray of str objects, shape (d,)
        """
        self.check_is_fitted()
        encoder = self.module_.encoder
        width = {
            "global": encoder.embedding_dim,
            "pooled": encoder.pre_pool.out_dim,
            "site_stats": 4 * encoder.summary_dim,
        }[self.embedding]
        return np.array([f"dim{i}" for i in range(width)], object)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative DIM loss on X (higher is better), with the fixed validation negatives.

        Parameters
        ----------
        X : sequence of Structure, single-column DataFrame, or featurized inputs
            Structures (at least 2).
        y : None
            Ignored.

        Returns
        -------
        float
            Minus the mean DIM loss per crystal.
        """
        self.check_is_fitted()
        dataset = self.get_dataset(X)
        n_sites, n_neighbors = item_sizes(dataset)
        sampler = PairBudgetBatchSampler(n_sites, n_neighbors, self.batch_pairs, min_crystals=2)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_sitenet)
        self.module_.eval()
        total, count = 0.0, 0
        with torch.no_grad(), self._autocast():
            for batch, _ in loader:
                scores = self.module_(**to_device(batch, self.device_))[1]
                size = len(batch["site_mask"])
                total += float(self.criterion_(scores)["loss"]) * size
                count += size
        return -total / count

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        tags.target_tags.required = False
        return tags
