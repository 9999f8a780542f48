"""
DIM embeddings in a scikit-learn pipeline, with cross-validation
=================================================================

A :class:`~skdim.DIMPretrainer` is a transformer: structures in, fixed-length
embeddings out. Here it is the first step of a pipeline that ends in a random
forest, and ``cross_val_score`` refits the whole pipeline (pretraining
included, without labels) on every training fold.
"""

# %%
# Load crystals with at most 8 sites in the unit cell (about 250 of the first
# 600, to keep this example to a minute or two on a CPU) and their formation
# energies.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:600]  # parse only what is used
structures, y = load_structures_csv(path, target="e_form_per_atom", ids=ids)
small = (structures.map(len) <= 8).to_numpy()
structures, y = structures[small], y[small]
print(f"{len(structures)} crystals")

# %%
# The pipeline: self-supervised embeddings, scaling, a random forest.
pipeline = make_pipeline(
    DIMPretrainer(max_epochs=3, random_state=0, verbose=0),
    StandardScaler(),
    RandomForestRegressor(n_estimators=200, random_state=0),
)
scores = cross_val_score(
    pipeline,
    structures,
    y,
    cv=KFold(3, shuffle=True, random_state=0),
    scoring="neg_mean_absolute_error",
)
print(f"MAE per fold (eV/atom): {np.round(-scores, 3)}; mean {-scores.mean():.3f}")

# %%
# Each fold's MAE next to that of a mean predictor on the same folds.
baseline = cross_val_score(
    DummyRegressor(),
    np.zeros((len(y), 1)),  # the mean predictor reads no features
    y,
    cv=KFold(3, shuffle=True, random_state=0),
    scoring="neg_mean_absolute_error",
)
folds = np.arange(1, len(scores) + 1)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(folds - 0.2, -scores, width=0.4, label="DIM embeddings + random forest")
ax.bar(folds + 0.2, -baseline, width=0.4, color="0.7", label="mean predictor")
ax.set(xticks=folds, xlabel="fold", ylabel="test MAE (eV/atom)")
ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
fig.tight_layout()
plt.show()
