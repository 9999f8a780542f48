"""
DIM embeddings in a matminer workflow
=====================================

:class:`skdim.matminer.DIMFeaturizer` is a matminer ``BaseFeaturizer``:
``featurize_dataframe`` adds one column per embedding dimension, computed in
batches. Here it sits next to matminer's own composition features.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matminer.featurizers.composition import ElementProperty
from matminer.featurizers.conversions import StructureToComposition

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv
from skdim.matminer import DIMFeaturizer

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:200]  # parse only what is used
structures, labels = load_structures_csv(path, ids=ids)
df = pd.DataFrame({"structure": structures, "e_form": labels["e_form_per_atom"]})

# %%
pretrainer = DIMPretrainer(max_epochs=3, random_state=0, verbose=0).fit(df["structure"])
df = DIMFeaturizer(pretrainer).featurize_dataframe(df, "structure", pbar=False)
df = StructureToComposition().featurize_dataframe(df, "structure", pbar=False)
df = ElementProperty.from_preset("magpie").featurize_dataframe(df, "composition", pbar=False)
print(df.shape)
print(df.filter(like="skdim_dim").iloc[:3, :4])

# %%
# How strongly each column follows formation energy, which neither featurizer
# saw: the absolute Pearson correlation of every DIM column and every Magpie
# column with it, each set sorted from the strongest.
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, columns in (("DIM embedding", "skdim_dim"), ("Magpie", "MagpieData")):
    table = df.filter(like=columns)
    table = table.loc[:, table.std() > 0]  # a constant column has no correlation
    r = table.corrwith(df["e_form"]).abs().sort_values(ascending=False).to_numpy()
    ax.plot(np.arange(1, len(r) + 1), r, label=f"{name} ({len(r)} columns)")
ax.set(xlabel="column, by rank", ylabel="|Pearson r| with formation energy")
ax.legend()
fig.tight_layout()
plt.show()
