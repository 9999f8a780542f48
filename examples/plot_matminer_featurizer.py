"""
DIM embeddings in a matminer workflow
=====================================

:class:`skdim.matminer.DIMFeaturizer` is a matminer ``BaseFeaturizer``:
``featurize_dataframe`` adds one column per embedding dimension, computed in
batches. Here it sits next to matminer's own composition features.
"""

# %%
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
