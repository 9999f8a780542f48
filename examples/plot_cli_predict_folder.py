"""
Predicting a folder of CIF files from the command line
======================================================

The ``skdim`` command (also ``python -m skdim``) pretrains, embeds, fits and
predicts on a CSV file with a CIF column or on a folder of CIF/POSCAR files.
This example drives it from Python with :func:`skdim.cli.main`; in a shell,
drop the list brackets::

    skdim pretrain mp36k_demo3k.csv.gz --out dim_model --max-epochs 3
    skdim fit mp36k_demo3k.csv.gz --target e_form_per_atom --pretrained dim_model --out reg
    skdim predict reg cod_cif10/ --out predictions.csv
"""

# %%
import tempfile
from pathlib import Path

import pandas as pd

from skdim.cli import main
from skdim.datasets import get_data_home

data = get_data_home()
work = Path(tempfile.mkdtemp())
subset = work / "train.csv"
pd.read_csv(data / "mp36k_demo3k.csv.gz").head(300).to_csv(subset, index=False)

# %%
main(["pretrain", str(subset), "--out", str(work / "dim"), "--max-epochs", "3"])
main(
    [
        "fit",
        str(subset),
        "--target",
        "e_form_per_atom",
        "--pretrained",
        str(work / "dim"),
        "--out",
        str(work / "reg"),
        "--max-epochs",
        "30",
    ]
)
main(["predict", str(work / "reg"), str(data / "cod_cif10"), "--out", str(work / "pred.csv")])
print(pd.read_csv(work / "pred.csv"))
