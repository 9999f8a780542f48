"""
Reading a training run: the epoch table and the history
=======================================================

With ``verbose=2`` a fit prints one row per epoch (the default, ``verbose=1``,
prints a line about every tenth of the run) and keeps the same values in
``history``. This example pretrains a DIM encoder on about 250 small
crystals and plots the columns that tell whether pretraining is healthy;
the :doc:`Training recipe </user_guide/training>` page of the user guide
explains every column.
"""

# %%
# Pretrain on the crystals with at most 8 sites among the first 600 of the
# demo set (to keep this example to a minute or two on a CPU), in batches of
# 8,192 pairs (7 optimizer steps per epoch), with the default plateau
# schedule: it cuts the learning rate when the validation loss stops
# improving (here for 2 epochs) and stops after two cuts.
import matplotlib.pyplot as plt
import pandas as pd

from skdim import DIMPretrainer
from skdim.datasets import get_data_home, load_structures_csv

path = get_data_home() / "mp36k_demo3k.csv.gz"
ids = pd.read_csv(path, usecols=["mp_id"])["mp_id"][:600]  # parse only what is used
structures, _ = load_structures_csv(path, ids=ids)
structures = structures[(structures.map(len) <= 8).to_numpy()]
print(f"{len(structures)} crystals")
dim = DIMPretrainer(
    max_epochs=15, batch_pairs=8192, plateau_patience=2, random_state=0, verbose=2
).fit(structures)

# %%
# The history holds the table's rows (and each batch's values under
# ``"batches"``); as a DataFrame, indexed by the optimizer step:
COLUMNS = ["epoch", "step", "train_loss", "valid_loss", "global_mi", "valid_global_mi"]
COLUMNS += ["local_mi", "valid_local_mi", "kl", "valid_kl", "lr", "lr_cuts", "stopped"]
table = pd.DataFrame([{key: row.get(key) for key in COLUMNS} for row in dim.history])
table = table.set_index("step")
print(table.round(3).to_string())

# %%
# What a healthy run looks like. The DIM loss falls, on the training crystals
# and on the 10 % held out alike. The mutual-information estimates (nats; 0
# is a critic that guesses, at most 2 ln 2 = 1.39) start *below* zero: a
# freshly initialised critic is worse than a guess. They cross zero within
# the first hundred or so steps and keep rising; the validation estimates
# follow the training ones. The KL term dips, then rises as the codes begin to
# carry information. The validation loss kept improving, so the learning rate
# was never cut (``lr_cuts`` stays 0) and the run used all 15 epochs.
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
ax = axes[0]
ax.plot(table.index, table["train_loss"], "o-", label="train_loss")
ax.plot(table.index, table["valid_loss"], "s--", label="valid_loss")
ax.set(title="DIM loss (lower is better)", xlabel="optimizer step")
ax.legend()
ax = axes[1]
for key, style in (("global_mi", "o-"), ("valid_global_mi", "s--")):
    ax.plot(table.index, table[key], style, color="C0", label=key)
for key, style in (("local_mi", "o-"), ("valid_local_mi", "s--")):
    ax.plot(table.index, table[key], style, color="C1", label=key)
ax.axhline(0, color="grey", lw=0.8)
ax.set(title="mutual-information estimates (nats)", xlabel="optimizer step")
ax.legend(fontsize=8)
ax = axes[2]
ax.plot(table.index, table["kl"], "o-", label="kl")
ax.plot(table.index, table["valid_kl"], "s--", label="valid_kl")
ax.set(title="KL term (nats)", xlabel="optimizer step")
ax.legend()
fig.tight_layout()
plt.show()
