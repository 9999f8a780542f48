"""How long and how to train Site-Net: a study on the development split, never the test set.

Every Site-Net variant is fitted on the label-masking benchmark's labelled
subsets of its first protocol (``_study_split.py``: N = 50, 100, 250, 1000 from
a fixed pool of the training fold, seeds 0, 1, 2) and scored on the
*development* split: training-fold structures that are neither labelled nor in
the benchmark's pretraining set (``label_masking._development_ids``). The
benchmark's test set is never loaded. The variants differ only in the training
recipe (budget in optimizer steps, learning-rate schedule, learning rate,
weight decay); the chosen recipe is the default of
:class:`skdim.SiteNetRegressor` (user guide, "Training recipe").

Usage (resumable: a finished (task, n, seed, variant) row is skipped)::

    OMP_NUM_THREADS=1 python benchmarks/recipe_study.py --task eform
    OMP_NUM_THREADS=1 python benchmarks/recipe_study.py --task gap

Rows go to ``benchmarks/results/recipe_study.csv``, the summary to
``benchmarks/results/recipe_study.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _study_split import study_split
from label_masking import TASKS, _development_ids, _finetune_epochs

from skdim import SiteNetRegressor
from skdim.datasets import get_data_home, load_featurized, load_structures_csv, save_featurized
from skdim.featurize import featurize

#: name -> (SiteNetRegressor options, description). "steps" is a budget in
#: optimizer steps; "old" is the benchmark's former fixed budget.
VARIANTS: dict[str, tuple[dict, str]] = {
    "old_constant": (
        {"lr_schedule": "constant", "max_epochs": "old"},
        "constant lr 1e-3, the former budget (about 200 steps, at least 10 epochs)",
    ),
    "cosine_500": ({"max_steps": 500}, "cosine schedule, 500 steps"),
    "cosine_1000": ({"max_steps": 1000}, "cosine schedule, 1,000 steps"),
    "cosine_1500": ({"max_steps": 1500}, "cosine schedule, 1,500 steps"),
    "cosine_4000": ({"max_steps": 4000}, "cosine schedule, 4,000 steps"),
    **{
        f"cosine_{steps}_{output}": (
            {"max_steps": steps, "output": output},
            f"cosine, {steps:,} steps, {text}",
        )
        for output, text in {
            "identity": "identity output rerun with the current training step (the baseline "
            "of the output-layer variants)",
            "softplus": "softplus output (non-negative targets: band gap)",
            "trelu": "transparent-ReLU output (the original's band-gap head)",
        }.items()
        for steps in (1500, 4000)
    },
    "cosine_1500_lr3e-3": ({"max_steps": 1500, "lr": 3e-3}, "cosine, 1,500 steps, lr 3e-3"),
    "cosine_1500_wd0.1": (
        {"max_steps": 1500, "optimizer__weight_decay": 0.1},
        "cosine, 1,500 steps, weight decay 0.1 (default 0.01)",
    ),
}


def _dataset_file(task: str) -> tuple[str, str]:
    if task == "gap":
        return "matbench_mp_gap.csv.gz", "matbench_id"
    return "mp36k.csv.gz", "mp_id"


def study_data(task: str, data: Path, cache: Path, n_dev: int) -> dict:
    """Featurized labelled pool and development set of a task (cached)."""
    path = cache / f"{task}_study.npz"
    split_path = cache / f"{task}_split.json"
    if split_path.exists():
        split = json.loads(split_path.read_text())
    else:
        split_path.write_text(json.dumps(study_split(task, data)))
        split = json.loads(split_path.read_text())  # labelled subsets keyed by str(seed)
    if not path.exists():
        labelled = sorted({i for ids in split["labelled"].values() for i in ids})
        dev = _development_ids(task, data, split, n_dev)
        name, id_col = _dataset_file(task)
        structures, y = load_structures_csv(
            data / name, target=TASKS[task]["target"], id_col=id_col, ids=labelled + dev
        )
        inputs = featurize(structures, max_atoms=50, on_error="skip")
        keep = [i for i, x in enumerate(inputs) if x is not None]
        save_featurized(
            path,
            [inputs[i] for i in keep],
            ids=[structures.index[i] for i in keep],
            y=np.asarray(y)[keep].tolist(),
            dev=dev,
        )
    inputs, meta = load_featurized(path)
    by_id = dict(zip(meta["ids"], zip(inputs, meta["y"])))
    dev = [i for i in meta["dev"] if i in by_id]
    return {
        "split": split,
        "by_id": by_id,
        "dev_x": [by_id[i][0] for i in dev],
        "dev_y": np.array([by_id[i][1] for i in dev], dtype=float),
    }


def fit_variant(variant: str, x: list, y: np.ndarray, seed: int) -> SiteNetRegressor:
    options = dict(VARIANTS[variant][0])
    if options.get("max_epochs") == "old":
        options["max_epochs"] = _finetune_epochs(len(x), 200)
    return SiteNetRegressor(random_state=seed, verbose=0, **options).fit(x, y)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--ns", type=int, nargs="+", default=[50, 100, 250, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--n-dev", type=int, default=400)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default="benchmarks/cache/study")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args(argv)

    cache, out = Path(args.cache_dir), Path(args.out_dir)
    cache.mkdir(parents=True, exist_ok=True)
    study = study_data(args.task, get_data_home(args.data_dir), cache, args.n_dev)
    rows_path = out / "recipe_study.csv"
    done = pd.read_csv(rows_path) if rows_path.exists() else pd.DataFrame()
    finished = {
        tuple(r) for r in done.reindex(columns=["task", "n", "seed", "variant"]).values.tolist()
    }
    for seed in args.seeds:
        ids = [i for i in study["split"]["labelled"][str(seed)] if i in study["by_id"]]
        for n in args.ns:
            x = [study["by_id"][i][0] for i in ids[:n]]
            y = np.array([study["by_id"][i][1] for i in ids[:n]], dtype=float)
            for variant in args.variants:
                if (args.task, n, seed, variant) in finished:
                    continue
                start = time.perf_counter()
                model = fit_variant(variant, x, y, seed)
                fit_s = time.perf_counter() - start
                prediction = model.predict(study["dev_x"])
                row = {
                    "task": args.task,
                    "n": n,
                    "seed": seed,
                    "variant": variant,
                    "dev_mae": float(np.abs(prediction - study["dev_y"]).mean()),
                    "train_mae": float(np.abs(model.predict(x) - y).mean()),
                    "epochs": len(model.history),
                    "steps": int(model.total_steps_),
                    "fit_s": round(fit_s, 1),
                    "machine": platform.node(),
                }
                pd.DataFrame([row]).to_csv(
                    rows_path, mode="a", header=not rows_path.exists(), index=False
                )
                print(row, flush=True)
    write_report(pd.read_csv(rows_path), out / "recipe_study.md")


def write_report(rows: pd.DataFrame, path: Path) -> None:
    """Median development MAE per (task, N, variant), and the paired change against the old."""
    wide = rows.pivot_table(index=["task", "n", "seed"], columns="variant", values="dev_mae")
    base = wide["old_constant"] if "old_constant" in wide else None
    lines = [
        "# Site-Net training recipe study (development split, never the test set)",
        "",
        "Command: `OMP_NUM_THREADS=1 python benchmarks/recipe_study.py --task {eform,gap} "
        "--ns 50 100 --variants old_constant cosine_500 cosine_1500`, then `--ns 250` with "
        "`cosine_1000 cosine_4000` added and `--ns 1000` with `cosine_4000` added "
        "(seeds 0, 1, 2). The output layers (band gap): `--task gap --ns 250 --variants "
        "cosine_1500_identity cosine_1500_softplus cosine_1500_trelu`, then `--ns 1000 "
        "--variants cosine_4000_identity cosine_4000_trelu`.  ",
        "Labelled subsets: the label-masking benchmark's protocol 1 (`_study_split.py`). "
        "Scored on 400 "
        "training-fold structures that are neither labelled nor in the benchmark's pretraining "
        "set (`label_masking._development_ids`).  ",
        "Median development MAE over seeds (seeds in brackets), the median paired change "
        "against `old_constant` (negative: better), median training MAE and fit seconds "
        "(1 thread).",
        "",
        "| variant | recipe |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, (_, text) in VARIANTS.items() if name in wide),
        "",
    ]
    for (task, n), block in wide.groupby(level=["task", "n"]):
        lines += [
            f"## {task}, N={n}",
            "",
            "| variant | dev MAE | vs old | train MAE | steps | fit s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for variant in [v for v in VARIANTS if v in block and block[v].notna().any()]:
            values = block[variant].dropna()
            change = ""
            if base is not None:
                paired = (values - base.loc[values.index]) / base.loc[values.index]
                if paired.notna().any():
                    change = f"{100 * paired.median():+.1f}%"
            sel = rows[(rows.task == task) & (rows.n == n) & (rows.variant == variant)]
            lines.append(
                f"| {variant} | {values.median():.3f} ({len(values)}) | {change} | "
                f"{sel.train_mae.median():.3f} | {sel.steps.median():.0f} | "
                f"{sel.fit_s.median():.0f} |"
            )
        lines.append("")
    lines += _budget_table(wide)
    path.write_text("\n".join(lines))


def _budget_table(wide: pd.DataFrame) -> list[str]:
    """How far each step budget is from the best budget of its (task, N, seed) cell, on average.

    The budget rule is one for both tasks (a user does not name the task), so
    this table is what it is chosen from: per N, the mean excess development
    MAE of each cosine budget over the best cosine budget of the same cell
    (0 % when it is the best), per task and over both.
    """
    budgets = [v for v, (options, _) in VARIANTS.items() if set(options) == {"max_steps"}]
    budgets = [v for v in budgets if v in wide]  # the cosine runs that differ only in steps
    lines = [
        "## Choosing the step budget",
        "",
        "Mean excess development MAE of each cosine budget over the best budget of the same "
        "(task, N, seed) cell (0 % = the best; cells in brackets). Only cells where every "
        "budget tried at that N has finished count.",
        "",
        "| N | budget | eform | gap | both |",
        "|---:|---|---:|---:|---:|",
    ]
    for n, block in wide[budgets].groupby(level="n"):
        block = block.dropna(axis=1, how="all").dropna()  # complete cells only
        excess = block.div(block.min(axis=1), axis=0) - 1
        for budget in excess.columns:
            values = excess[budget]
            cells = []
            for task in ("eform", "gap"):
                part = values[values.index.get_level_values("task") == task]
                cells.append(f"{100 * part.mean():.1f} % ({len(part)})" if len(part) else "")
            lines.append(
                f"| {n} | {budget} | {cells[0]} | {cells[1]} | "
                f"{100 * values.mean():.1f} % ({len(values)}) |"
            )
    return lines + [""]


if __name__ == "__main__":
    main()
