"""
Fine-tuning SiteNetRegressor from a saved pretrainer
====================================================

Pretrain once on unlabeled structures, save the model to a directory
(``weights.pt`` + ``config.json``), then start any number of supervised models
from it. The regressor takes its architecture and featurization from the saved
model, and loads the encoder weights strictly.
"""

# %%
import tempfile
from pathlib import Path

import numpy as np

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

structures, labels = load_structures_csv(get_data_home() / "mp36k_demo3k.csv.gz")
X = featurize(structures.iloc[:700], max_atoms=50)
y = labels["e_form_per_atom"].to_numpy()[:700]
unlabeled, (X_lab, y_lab), (X_test, y_test) = X[:500], (X[:100], y[:100]), (X[500:], y[500:])

# %%
# Pretrain without labels and save.
model_dir = Path(tempfile.mkdtemp()) / "dim_demo"
DIMPretrainer(max_epochs=5, random_state=0, verbose=0).fit(unlabeled).save(model_dir)
print(sorted(p.name for p in model_dir.iterdir()))

# %%
# Fine-tune on 100 labels, and compare with training from scratch.
for pretrained in (model_dir, None):
    regressor = SiteNetRegressor(pretrained=pretrained, max_epochs=60, random_state=0, verbose=0)
    regressor.fit(X_lab, y_lab)
    mae = np.abs(regressor.predict(X_test) - y_test).mean()
    print(f"pretrained={'saved DIM' if pretrained else 'none':9s} test MAE {mae:.3f} eV/atom")
