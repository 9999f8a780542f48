"""Regenerate ``skdim/magpie_elements.csv`` from matminer's Magpie data.

The table holds every scalar Magpie property for Z = 1..118 exactly as matminer
ships it, with missing values left empty (``MagpieData(impute_nan=False)``).
The fill rule for missing values lives in :mod:`skdim.featurize`.

Run ``python tools/build_element_table.py`` after upgrading matminer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matminer.utils.data import MagpieData
from pymatgen.core import Element

OUT = Path(__file__).resolve().parents[1] / "skdim" / "magpie_elements.csv"


def main() -> None:
    magpie = MagpieData(impute_nan=False)
    columns = {}
    for name, values in sorted(magpie.all_elemental_props.items()):
        if name == "OxidationStates":  # a list per element, not a scalar
            continue
        columns[name] = [values[Element.from_Z(z).symbol] for z in range(1, 119)]
    table = pd.DataFrame(columns, index=pd.RangeIndex(1, 119, name="Z"))
    table.insert(0, "symbol", [Element.from_Z(z).symbol for z in range(1, 119)])
    known = table["Number"].notna()
    assert np.array_equal(table.loc[known, "Number"], table.index[known])
    table.to_csv(OUT, float_format="%.10g")
    print(f"wrote {OUT} ({table.shape[1] - 1} properties)")


if __name__ == "__main__":
    main()
