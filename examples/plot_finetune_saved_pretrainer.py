"""
Fine-tuning SiteNetRegressor from a saved pretrainer
====================================================

Pretrain once on unlabeled structures, save the model to a directory
(``weights.pt`` + ``config.json``), then start any number of supervised models
from it. The regressor takes its architecture and featurization from the saved
model, and loads the encoder weights strictly.
"""

# %%
# Data: crystals with at most 8 sites in the unit cell (to keep this example
# to a minute or two on a CPU), featurized once.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.datasets import get_data_home, load_structures_csv
from skdim.featurize import featurize

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:700]  # parse only what is used
structures, labels = load_structures_csv(path, ids=ids)
small = (structures.map(len) <= 8).to_numpy()
X = featurize(structures[small], max_atoms=50)
y = labels["e_form_per_atom"][small].to_numpy()
unlabeled, (X_lab, y_lab) = X[:200], (X[:60], y[:60])
X_test, y_test = X[200:], y[200:]
print(f"{len(unlabeled)} unlabeled, {len(X_lab)} labelled, {len(X_test)} test structures")

# %%
# Pretrain without labels and save.
model_dir = Path(tempfile.mkdtemp()) / "dim_demo"
DIMPretrainer(max_epochs=3, random_state=0, verbose=0).fit(unlabeled).save(model_dir)
print(sorted(p.name for p in model_dir.iterdir()))

# %%
# Fine-tune on 60 labels, and compare with training from scratch. At this toy
# scale (a few epochs, 60 labels, one seed) the difference between the two
# is mostly noise; the label-masking benchmark in the documentation compares
# them properly, over several seeds and label counts.
predictions = {}
for name, pretrained in (("saved DIM", model_dir), ("none", None)):
    regressor = SiteNetRegressor(pretrained=pretrained, max_epochs=30, random_state=0, verbose=0)
    regressor.fit(X_lab, y_lab)
    predictions[name] = regressor.predict(X_test)
    mae = np.abs(predictions[name] - y_test).mean()
    print(f"pretrained={name:9s} test MAE {mae:.3f} eV/atom")

# %%
# Predicted against DFT formation energies on the test crystals.
fig, ax = plt.subplots(figsize=(5, 5))
for name, prediction in predictions.items():
    ax.scatter(y_test, prediction, s=10, alpha=0.6, label=f"pretrained={name}")
limits = [y_test.min(), y_test.max()]
ax.plot(limits, limits, color="gray", linewidth=1)
ax.set(xlabel="DFT formation energy (eV/atom)", ylabel="predicted (eV/atom)")
ax.legend()
plt.show()
