"""
Predicting a folder of CIF files from the command line
======================================================

The ``skdim`` command (also ``python -m skdim``) pretrains, embeds, fits and
predicts on a CSV file with a CIF column or on a folder of CIF/POSCAR files.
This example runs it from Python through :func:`skdim.cli.main`, which takes
the same arguments as the shell command::

    skdim pretrain mp36k_demo3k.csv.gz --out dim_model --max-epochs 3
    skdim fit mp36k_demo3k.csv.gz --target e_form_per_atom --pretrained dim_model --out reg
    skdim predict reg cod_cif10/ --out predictions.csv

The commands show parsing and featurizing progress and, while training, a
line about every tenth of the run (steps done / total, losses, time left;
``-v`` adds a row per epoch); ``--quiet``, used here to keep this page
short, turns all of it off.
"""

# %%
# A training file of 150 crystals, in a temporary folder.
import shlex
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from skdim.cli import main
from skdim.datasets import get_data_home

data = get_data_home()
work = Path(tempfile.mkdtemp())
pd.read_csv(data / "mp36k_demo3k.csv.gz", nrows=150).to_csv(work / "train.csv", index=False)


def skdim(command_line):
    """Run ``skdim COMMAND_LINE`` in this Python process, as a shell would."""
    print(f"$ skdim {command_line}")
    assert main(shlex.split(command_line)) == 0


# %%
# Pretrain, fine-tune from the pretrained model, and predict the CIF files of
# a folder (here, 10 structures from the Crystallography Open Database).
skdim(f"pretrain {work / 'train.csv'} --out {work / 'dim'} --max-epochs 2 --quiet")
skdim(
    f"fit {work / 'train.csv'} --target e_form_per_atom --pretrained {work / 'dim'}"
    f" --out {work / 'reg'} --max-epochs 10 --quiet"
)
skdim(f"predict {work / 'reg'} {data / 'cod_cif10'} --out {work / 'pred.csv'} --quiet")
# a row per file, named by the file name without its extension (1000041.cif is
# 1000041), as in an id_prop.csv; skdim predict --help lists every option
predictions = pd.read_csv(work / "pred.csv", index_col=0)
print(predictions)

# %%
# The predicted formation energy of each file (a model fitted on 150 crystals
# for 10 epochs: an illustration of the workflow, not of the accuracy).
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.barh(predictions.index.astype(str), predictions["prediction"])
ax.set(xlabel="predicted formation energy (eV/atom)", ylabel="CIF file")
fig.tight_layout()
plt.show()
