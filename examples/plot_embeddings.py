"""
A map of DIM embeddings
=======================

A 2-D t-SNE projection of the DIM embeddings of about 250 crystals, coloured
by formation energy, which the pretrainer never saw. To keep this example to a
minute on a CPU, it uses crystals with at most 8 sites in the unit cell and
pretrains for a few epochs only.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.manifold import TSNE

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:600]  # parse only what is used
structures, labels = load_structures_csv(path, ids=ids)
small = (structures.map(len) <= 8).to_numpy()
structures, e_form = structures[small], labels["e_form_per_atom"][small]
embeddings = DIMPretrainer(max_epochs=3, random_state=0, verbose=0).fit_transform(structures)
print(f"{embeddings.shape[0]} embeddings of width {embeddings.shape[1]}")

# %%
points = TSNE(perplexity=30, init="pca", random_state=0).fit_transform(embeddings)
fig, ax = plt.subplots(figsize=(6, 5))
scatter = ax.scatter(points[:, 0], points[:, 1], c=e_form, s=8, cmap="viridis")
fig.colorbar(scatter, label="formation energy (eV/atom)")
ax.set(title="t-SNE of DIM embeddings", xticks=[], yticks=[])
plt.show()
