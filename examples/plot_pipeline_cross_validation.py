"""
DIM embeddings in a scikit-learn pipeline, with cross-validation
=================================================================

A :class:`~skdim.DIMPretrainer` is a transformer: structures in, fixed-length
embeddings out. Here it is the first step of a pipeline that ends in a random
forest, and ``cross_val_score`` refits the whole pipeline (pretraining
included, without labels) on every training fold.
"""

# %%
# Load 300 structures and their formation energies.
import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv

structures, labels = load_structures_csv(get_data_home() / "mp36k_demo3k.csv.gz")
structures, y = structures.iloc[:300], labels["e_form_per_atom"].iloc[:300]

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
