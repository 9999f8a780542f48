"""The cross-validation recipe of docs/user_guide/choosing_a_model.rst runs as written.

Its one ``python`` code block is executed on 40 real structures (30 labelled,
10 unlabelled) with one training epoch and 2 folds: only the data, the
training budgets and the number of folds are replaced, each replacement
checked to apply exactly where expected, so an edit of the page that breaks
the code or drops a candidate fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

PAGE = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "choosing_a_model.rst"
TINY = "max_epochs=1, batch_pairs=8000, "
#: (text in the block, replacement, how many times it must occur)
REPLACEMENTS = [
    (
        'load_structures_csv(get_data_home() / "mp36k_demo3k.csv.gz")',
        "SMALL_DATA",
        1,
    ),
    (".iloc[:250]", ".iloc[:30]", 2),
    ("structures.iloc[250:]", "structures.iloc[30:]", 1),
    ("DIMPretrainer(max_epochs=30, ", "DIMPretrainer(" + TINY, 1),
    ("SiteNetRegressor(random_state=0", "SiteNetRegressor(" + TINY + "random_state=0", 1),
    ("pretrained=FrozenEstimator(dim), ", "pretrained=FrozenEstimator(dim), " + TINY, 1),
    ("RandomForestRegressor(300, ", "RandomForestRegressor(20, ", 1),
    ("KFold(5, ", "KFold(2, ", 1),
]


def recipe_block() -> str:
    """The page's ``.. code-block:: python`` whose code calls cross_val_score."""
    blocks = re.findall(
        r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", PAGE.read_text(), flags=re.M
    )
    code = [
        "\n".join(line[3:] for line in block.splitlines())
        for block in blocks
        if "cross_val_score(" in block
    ]
    assert len(code) == 1, f"expected one recipe block on {PAGE.name}, found {len(code)}"
    return code[0]


def test_recipe_runs_on_real_structures(small):
    code = recipe_block()
    for old, new, count in REPLACEMENTS:
        assert code.count(old) == count, f"{old!r} occurs {code.count(old)} times, not {count}"
        code = code.replace(old, new)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(PAGE), "exec"), {"SMALL_DATA": small, "__name__": "recipe"})
    lines = out.getvalue().splitlines()
    names = [
        "forest on pooled site features",
        "ridge on pooled site features",
        "ridge on DIM embeddings",
        "Site-Net from scratch",
        "Site-Net fine-tuned from DIM",
    ]
    assert [line[:30].strip() for line in lines] == names
    maes = [float(re.search(r"MAE (\S+) \+- (\S+)", line).group(1)) for line in lines]
    assert np.isfinite(maes).all() and min(maes) > 0
