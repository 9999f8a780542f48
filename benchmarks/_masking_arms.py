"""The arms of the label-masking benchmark: names, families, and the downstream models.

An arm is either a Site-Net fit (``sitenet_<start>``: ``scratch``, ``dim``,
``shipped``, ``transfer``), a downstream model on a feature family
(``<family>_<model>``, model one of :data:`MODELS`), or ``mean``. An arm's
family is the longest family name it starts with, so ``shipped_magpie_rf`` is
of ``shipped_magpie``, not of ``shipped``.

DIM arms are those whose representation comes from Deep InfoMax: the task's
own protocol DIM model and the shipped encoder. Every other arm (Site-Net
from scratch or from a supervised source, CHGNet, matminer features, the
untrained encoder, the mean) is a non-DIM arm the DIM arms must beat.
"""

from __future__ import annotations

import numpy as np

MODELS = ("rf", "mlp", "ridge", "knn")
#: matminer feature families (computed per id, cached); ``magpie`` alone is
#: only used concatenated with the shipped encoder's embeddings.
MATMINER = ("xrd", "ofm", "magpie_ssf")
#: family -> label, in the report's order, in the README's words.
FAMILIES = {
    "sitenet_dim": "Site-Net fine-tuned from DIM",
    "sitenet_shipped": "Site-Net fine-tuned from the shipped encoder",
    "sitenet_transfer": "Site-Net fine-tuned from the other task's labels",
    "sitenet_scratch": "Site-Net from scratch",
    "dim": "DIM embeddings",
    "shipped": "shipped-encoder embeddings",
    "shipped_magpie": "shipped-encoder embeddings + Magpie",
    "chgnet": "CHGNet crystal features",
    "random": "untrained-encoder embeddings",
    "input_stats": "pooled input site features",
    "xrd": "XRD powder pattern",
    "ofm": "orbital field matrix",
    "magpie_ssf": "Magpie + SiteStatsFingerprint",
    "mean": "mean predictor",
}
#: downstream model -> its name in the report
MODEL_NAMES = {"rf": "forest", "mlp": "MLP", "ridge": "ridge", "knn": "kNN"}
DIM_FAMILIES = ("sitenet_dim", "sitenet_shipped", "dim", "shipped", "shipped_magpie")
#: families whose pretraining data may hold the test labels: CHGNet was
#: trained on MPtrj, Materials Project energies of these very materials.
LEAKY_FAMILIES = ("chgnet",)
LEAK_MARK = "†"


def arm_family(arm: str) -> str:
    """The family of an arm: the longest family name that the arm is or starts with.

    Parameters
    ----------
    arm : str
        An arm name such as ``shipped_magpie_rf``.

    Returns
    -------
    str
        A key of :data:`FAMILIES`, or the arm itself when none matches.
    """
    matches = [f for f in FAMILIES if arm == f or arm.startswith(f + "_")]
    return max(matches, key=len) if matches else arm


def is_dim_arm(arm: str) -> bool:
    """Whether an arm's representation comes from Deep InfoMax pretraining."""
    return arm_family(arm) in DIM_FAMILIES


def is_leaky_arm(arm: str) -> bool:
    """Whether an arm may have seen the test labels (CHGNet: trained on MPtrj)."""
    return arm_family(arm) in LEAKY_FAMILIES


def shown(arm: str) -> str:
    """An arm's name as the report shows it, flagged with † when it may leak.

    ``sitenet_dim`` is "Site-Net fine-tuned from DIM", ``input_stats_rf``
    "forest on pooled input site features"; an arm of no known family keeps
    its name.
    """
    family = arm_family(arm)
    model = arm[len(family) + 1 :]
    label = FAMILIES.get(family, arm)
    if model:
        label = f"{MODEL_NAMES.get(model, model)} on {label}"
    return f"{label} {LEAK_MARK}" if is_leaky_arm(arm) else label


def arm_order(arm: str) -> tuple[int, str]:
    """Sort key: the report's family order, then the name."""
    order = list(FAMILIES)
    family = arm_family(arm)
    return (order.index(family) if family in order else len(order), arm)


def feature_arms(families: list[str]) -> list[str]:
    """Every ``<family>_<model>`` arm of the given feature families."""
    return [f"{family}_{model}" for family in families for model in MODELS]


def downstream(model: str, rf_trees: int, seed: int, n_jobs: int = 1):
    """A fresh downstream model for a feature table.

    Parameters
    ----------
    model : {"rf", "mlp", "ridge", "knn"}
        Random forest (sklearn defaults, ``rf_trees`` trees); one-hidden-layer
        MLP (64 units); ridge with its penalty chosen by efficient
        leave-one-out CV; k nearest neighbours with k chosen by 5-fold CV.
        Model choices use only the labelled subset.
    rf_trees : int
        Trees of the forest.
    seed : int
        Random state.
    n_jobs : int, default=1
        Processes of the forest.

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    # Standardized features are clipped to +-5: a feature that is (almost)
    # constant in a small labelled subset would otherwise explode on test data.
    prep = [
        SimpleImputer(),
        StandardScaler(),
        FunctionTransformer(np.clip, kw_args={"a_min": -5, "a_max": 5}),
    ]
    if model == "rf":
        return make_pipeline(
            SimpleImputer(), RandomForestRegressor(rf_trees, random_state=seed, n_jobs=n_jobs)
        )
    if model == "mlp":
        mlp = MLPRegressor(
            hidden_layer_sizes=(64,), max_iter=2000, random_state=seed, early_stopping=False
        )
        return make_pipeline(*prep, mlp)
    if model == "ridge":
        return make_pipeline(*prep, RidgeCV(alphas=np.logspace(-3, 3, 13)))
    knn = GridSearchCV(
        KNeighborsRegressor(),
        {"n_neighbors": [1, 3, 5, 10], "weights": ["distance"]},
        cv=5,
        scoring="neg_mean_absolute_error",
    )
    return make_pipeline(*prep, knn)
