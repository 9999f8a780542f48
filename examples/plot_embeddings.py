"""
A map of DIM embeddings
=======================

A 2-D t-SNE projection of the DIM embeddings of 600 structures, coloured by
band gap: the pretrainer never saw a band gap.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.manifold import TSNE

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv

structures, labels = load_structures_csv(get_data_home() / "mp36k_demo3k.csv.gz")
structures, gap = structures.iloc[:600], labels["band_gap"].iloc[:600]
embeddings = DIMPretrainer(max_epochs=5, random_state=0, verbose=0).fit_transform(structures)

# %%
points = TSNE(perplexity=30, init="pca", random_state=0).fit_transform(embeddings)
fig, ax = plt.subplots(figsize=(6, 5))
scatter = ax.scatter(points[:, 0], points[:, 1], c=gap, s=8, cmap="viridis")
fig.colorbar(scatter, label="PBE band gap (eV)")
ax.set(title="t-SNE of DIM embeddings", xticks=[], yticks=[])
plt.show()
