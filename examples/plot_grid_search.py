"""
Tuning a SiteNetRegressor with GridSearchCV
===========================================

Every constructor argument is a scikit-learn parameter, including the
network's own options through skorch's ``module__`` routing, so
``GridSearchCV`` works as with any estimator. Here it tunes the learning rate
and the pooling over sites (``module__pooling``) on 100 small crystals.
"""

# %%
# Load and featurize the data once: the estimators accept featurized inputs
# and then skip featurization, which matters when a search fits many models.
# To keep this example to a minute on a CPU, it uses 100 crystals with at
# most 8 sites in the unit cell.
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

from skdim import SiteNetRegressor
from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:400]  # parse only what is used
structures, labels = load_structures_csv(path, ids=ids)
small = (structures.map(len) <= 8).to_numpy()
X = featurize(structures[small][:100], max_atoms=50)
y = labels["e_form_per_atom"][small].to_numpy()[:100]

# %%
# Search a 2 x 2 grid with 2-fold cross-validation (8 fits, then a refit of
# the best setting on all 100 crystals).
search = GridSearchCV(
    SiteNetRegressor(max_epochs=10, random_state=0, verbose=0),
    {"lr": [1e-3, 3e-3], "module__pooling": ["mean", "max"]},
    cv=KFold(2, shuffle=True, random_state=0),
    scoring="neg_mean_absolute_error",
)
search.fit(X, y)
results = pd.DataFrame(search.cv_results_)
results["mean MAE"] = -results["mean_test_score"]
print(results[["param_lr", "param_module__pooling", "mean MAE"]].round(3))
print("best parameters:", search.best_params_)
print(f"best cross-validated MAE: {-search.best_score_:.3f} eV/atom")

# %%
# The cross-validated MAE of each setting, with its spread over the two folds.
settings = [f"lr={p['lr']:g}\n{p['module__pooling']} pooling" for p in results["params"]]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(settings, results["mean MAE"], yerr=results["std_test_score"], capsize=4)
ax.set(ylabel="cross-validated MAE (eV/atom)", title="GridSearchCV over SiteNetRegressor")
fig.tight_layout()
plt.show()
