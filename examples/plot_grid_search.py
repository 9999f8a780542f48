"""
Tuning a SiteNetRegressor with GridSearchCV
===========================================

Every constructor argument is a scikit-learn parameter, including the
network's own options through skorch's ``module__`` routing, so
``GridSearchCV`` works as with any estimator.
"""

# %%
from sklearn.model_selection import GridSearchCV, KFold

from skdim import SiteNetRegressor
from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

structures, labels = load_structures_csv(get_data_home() / "mp36k_demo3k.csv.gz")
# Featurize once: estimators accept featurized inputs and skip this step.
X = featurize(structures.iloc[:200], max_atoms=50)
y = labels["e_form_per_atom"].to_numpy()[:200]

# %%
search = GridSearchCV(
    SiteNetRegressor(max_epochs=20, random_state=0, verbose=0),
    {"lr": [1e-3, 3e-3], "head_hidden": [(32,), (64, 64)]},
    cv=KFold(2, shuffle=True, random_state=0),
    scoring="neg_mean_absolute_error",
)
search.fit(X, y)
print("best parameters:", search.best_params_)
print(f"best cross-validated MAE: {-search.best_score_:.3f} eV/atom")
