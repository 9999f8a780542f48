"""What moves Site-Net fine-tuning: a study on a development split, never the test set.

The label-masking benchmark (``skdim benchmark --full``) fixes every choice in
advance. This script is where those choices are made: it fits Site-Net variants
(from scratch or from the benchmark's DIM model; fixed epoch budget or early
stopping on a validation part of the labelled subset; a lower learning rate for
the pretrained encoder) on the benchmark's own labelled subsets and scores them
on a *development* set: training-fold structures that are neither labelled nor
used for pretraining. The benchmark's test set is never loaded.

Run after the full profile has built its cache (split, DIM model)::

    python benchmarks/finetune_study.py --task eform --ns 50 250 --seeds 0 1

Rows are appended to ``benchmarks/results/finetune_study.csv`` (resumable: a
finished (task, n, seed, variant) is skipped) and the median over seeds is
written to ``benchmarks/results/finetune_study.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _masking_features import read_structures
from label_masking import (
    PROFILES,
    TASKS,
    _development_ids,
    _downstream,
    _finetune_epochs,
    _pretrained,
)

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.datasets import get_data_home, load_featurized, load_structures_csv, save_featurized
from skdim.featurize import featurize

LONG_PRETRAINING_EPOCHS = PROFILES["full"]["long_pretrain_epochs"]  # 3x the 6 epochs
LONGER_PRETRAINING_EPOCHS = 3 * LONG_PRETRAINING_EPOCHS  # 9x
EARLY_STOPPING = {"validation_fraction": 0.2, "early_stopping": 20, "max_epochs": 400}
ENCODER_LR_01 = {"optimizer__param_groups": [("encoder.*", {"lr": 1e-4})]}
# "pretrained": None (scratch), "dim" (the benchmark's DIM model), "dim_long" or
# "dim_longer" (the same pretraining run for LONG_PRETRAINING_EPOCHS or
# LONGER_PRETRAINING_EPOCHS); "embedding": a random forest on frozen embeddings
# instead of fine-tuning.
VARIANTS = {
    "scratch_fixed": {"pretrained": None},
    "dim_fixed": {"pretrained": "dim"},
    "dim_long_fixed": {"pretrained": "dim_long"},
    "dim_longer_fixed": {"pretrained": "dim_longer"},
    "scratch_early_stop": {"pretrained": None, **EARLY_STOPPING},
    "dim_early_stop": {"pretrained": "dim", **EARLY_STOPPING},
    "dim_fixed_encoder_lr_0.1": {"pretrained": "dim", **ENCODER_LR_01},
    "dim_early_stop_encoder_lr_0.1": {"pretrained": "dim", **EARLY_STOPPING, **ENCODER_LR_01},
    "random_embedding_rf": {"embedding": "random"},
    "dim_embedding_rf": {"embedding": "dim"},
    "dim_long_embedding_rf": {"embedding": "dim_long"},
    "dim_longer_embedding_rf": {"embedding": "dim_longer"},
}


def development_set(task: str, data: Path, cache: Path, n_dev: int) -> tuple[list, np.ndarray]:
    """Featurized training-fold structures outside the labelled pool and pretraining set."""
    path = cache / f"{task}_dev.npz"
    if not path.exists():
        split = json.loads((cache / f"{task}_split.json").read_text())
        ids = _development_ids(task, data, split, n_dev)
        name, id_col = (
            ("matbench_mp_gap.csv.gz", "matbench_id")
            if task == "gap"
            else ("mp36k.csv.gz", "mp_id")
        )
        structures, y = load_structures_csv(
            data / name, target=TASKS[task]["target"], id_col=id_col, ids=ids
        )
        inputs = featurize(structures, max_atoms=50, on_error="skip")
        keep = [i for i, x in enumerate(inputs) if x is not None]
        save_featurized(
            path,
            [inputs[i] for i in keep],
            ids=[structures.index[i] for i in keep],
            y=np.asarray(y)[keep].tolist(),
        )
    inputs, meta = load_featurized(path)
    return inputs, np.asarray(meta["y"], dtype=float)


def embedding_forest(encoder: str, encoders: dict, x, y, dev_inputs, seed: int) -> np.ndarray:
    """Dev-set predictions of the benchmark's random forest on frozen embeddings."""
    if encoder == "random":
        # untrained: one epoch at learning rate 0 leaves the initial weights
        model = DIMPretrainer(
            max_epochs=1, lr=0.0, lr_schedule="constant", random_state=0, verbose=0
        ).fit(x[:50])
    else:
        model = DIMPretrainer.load(encoders[encoder])
    forest = _downstream("rf", 300, seed).fit(model.transform(x), y)
    return forest.predict(model.transform(dev_inputs))


def main(argv: list[str] | None = None) -> None:
    """Fit every variant on the benchmark's labelled subsets; score on the dev set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--ns", type=int, nargs="+", default=[50, 250])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--n-dev", type=int, default=400)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default="benchmarks/cache/full")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args(argv)

    cache, out = Path(args.cache_dir), Path(args.out_dir)
    data = get_data_home(args.data_dir)
    dev_inputs, y_dev = development_set(args.task, data, cache, args.n_dev)
    split = json.loads((cache / f"{args.task}_split.json").read_text())
    inputs, meta = load_featurized(cache / f"{args.task}_sitenet.npz")
    inputs = dict(zip(meta["ids"], inputs))
    frame = read_structures(cache / f"{args.task}_structures.json.gz")
    encoders = {"dim": cache / f"{args.task}_dim"}
    for name, epochs in [
        ("dim_long", LONG_PRETRAINING_EPOCHS),
        ("dim_longer", LONGER_PRETRAINING_EPOCHS),
    ]:
        if any(
            VARIANTS[v].get("pretrained", VARIANTS[v].get("embedding")) == name
            for v in args.variants
        ):
            encoders[name], _ = _pretrained(args.task, inputs, split, epochs, cache, name[3:])
    rows_path = out / "finetune_study.csv"
    done = pd.read_csv(rows_path) if rows_path.exists() else pd.DataFrame(columns=["task"])
    finished = {tuple(r) for r in done.reindex(columns=["task", "n", "seed", "variant"]).values}

    for seed in args.seeds:
        ids = [i for i in split["labelled"][str(seed)] if i in inputs]
        for n in args.ns:
            subset = ids[:n]
            x, y = [inputs[i] for i in subset], frame.loc[subset, "y"].to_numpy()
            for variant in args.variants:
                if (args.task, n, seed, variant) in finished:
                    continue
                options = dict(VARIANTS[variant])
                start = time.perf_counter()
                epochs = None
                if "embedding" in options:
                    prediction = embedding_forest(
                        options["embedding"], encoders, x, y, dev_inputs, seed
                    )
                else:
                    source = options.pop("pretrained")
                    options.setdefault("max_epochs", _finetune_epochs(n, 200))
                    model = SiteNetRegressor(
                        pretrained=encoders[source] if source else None,
                        random_state=seed,
                        verbose=0,
                        **options,
                    ).fit(x, y)
                    prediction = model.predict(dev_inputs)
                    epochs = len(model.history)
                row = {
                    "task": args.task,
                    "n": n,
                    "seed": seed,
                    "variant": variant,
                    "dev_mae": float(np.abs(prediction - y_dev).mean()),
                    "epochs": epochs,
                    "fit_s": round(time.perf_counter() - start, 1),
                }
                pd.DataFrame([row]).to_csv(
                    rows_path, mode="a", header=not rows_path.exists(), index=False
                )
                print(row, flush=True)

    write_report(pd.read_csv(rows_path), out / "finetune_study.md")


DESCRIPTIONS = {
    "scratch_fixed": "Site-Net from scratch, the benchmark's fixed budget",
    "dim_fixed": "fine-tuned from the benchmark's DIM model (6 epochs), fixed budget",
    "dim_long_fixed": f"fine-tuned from DIM pretrained {LONG_PRETRAINING_EPOCHS} epochs",
    "dim_longer_fixed": f"fine-tuned from DIM pretrained {LONGER_PRETRAINING_EPOCHS} epochs",
    "scratch_early_stop": "from scratch, early stopping on 20 % of the labelled subset",
    "dim_early_stop": "from DIM, early stopping on 20 % of the labelled subset",
    "dim_fixed_encoder_lr_0.1": "from DIM, encoder learning rate 1e-4 (head 1e-3)",
    "dim_early_stop_encoder_lr_0.1": "from DIM, early stopping and encoder learning rate 1e-4",
    "random_embedding_rf": "random forest on an untrained encoder's embeddings",
    "dim_embedding_rf": "random forest on DIM embeddings (6 epochs)",
    "dim_long_embedding_rf": f"random forest on DIM embeddings ({LONG_PRETRAINING_EPOCHS} epochs)",
    "dim_longer_embedding_rf": (
        f"random forest on DIM embeddings ({LONGER_PRETRAINING_EPOCHS} epochs)"
    ),
}


def write_report(rows: pd.DataFrame, path: Path) -> None:
    """Median development MAE per (task, N, variant) and its paired change against scratch."""
    wide = rows.pivot_table(index=["task", "n", "seed"], columns="variant", values="dev_mae")
    change = wide.sub(wide["scratch_fixed"], axis=0).div(wide["scratch_fixed"], axis=0)
    lines = [
        "# Site-Net fine-tuning study (development split, never the test set)",
        "",
        "Command: `python benchmarks/finetune_study.py --task {gap,eform} --ns 250 50 "
        "--seeds 0 1 --variants ...` after `skdim benchmark --full` built its cache.  ",
        "Scored on 400 training-fold structures that are neither labelled nor pretrained on"
        " (`label_masking._development_ids`); the labelled subsets are the benchmark's own.  ",
        "Median development MAE over seeds (number of seeds in brackets), and the median over"
        " the same seeds of the change against `scratch_fixed` (negative: better than scratch).",
        "",
        "| variant | what it is |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in DESCRIPTIONS.items()),
        "",
    ]
    for (task, n), block in wide.groupby(level=["task", "n"]):
        lines += [f"## {task}, N={n}", "", "| variant | dev MAE | vs scratch |", "|---|---:|---:|"]
        for variant in [v for v in DESCRIPTIONS if v in block and block[v].notna().any()]:
            values = block[variant].dropna()
            relative = change.loc[values.index, variant].median()
            lines.append(
                f"| {variant} | {values.median():.3f} ({len(values)}) | {100 * relative:+.1f}% |"
            )
        lines.append("")
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
