"""Which DIM objective gives an encoder worth shipping: a study on a development split.

The shipped encoder's pretraining run (``benchmarks/pretrain_encoder.py``)
was checked after 10 epochs on 79,103 structures: its embeddings were worse
than an untrained encoder's for a random forest, ridge and an MLP on mp36k
formation energy, and fine-tuning from it was worse than training from
scratch (``benchmarks/results/pretrained_embeddings.md`` and the study's
notes in the model card record the check). This
study compares objective variants at a smaller, equal budget before the long
run is restarted.

Every variant pretrains a :class:`skdim.DIMPretrainer` (no labels) on the
same seeded subsample of the shipped run's structures (``--n-pretrain``, the
mp_gap fold-0 training set minus the mp36k test split), for the same number
of epochs at a constant learning rate, and is scored on a *development*
split of mp36k formation energy: structures of the mp36k training split,
never its test split. Scores per variant:

- ridge and random forest on its embeddings (``embedding="pooled"``, the
  default transform; the mean, and the mean and standard deviation, over
  sites of the pre-bottleneck site summaries), 250 labels, three label
  seeds, 1,000 development structures;
- Site-Net fine-tuned from it with the default recipe on 250 labels
  (``finetune``, two seeds) and on the first 50 and 100 of them
  (``finetune_50``, ``finetune_100``, three seeds: ``--finetune-ns 50 100
  --finetune-seeds 3``).

``untrained`` is the same network at its initial weights (and Site-Net from
scratch). With it, ridge and the random forest are also fitted on the
encoder's *inputs* pooled without any network (``input_stats``: the mean,
standard deviation, minimum and maximum over sites of the site features), the
reference an embedding has to beat to add anything. Everything is cached
under ``--cache-dir`` and finished rows are kept in the CSV, so the study
resumes; run variants in parallel processes with ``--variants``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py --variants base kl0
    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py --variants infonce untrained
    python benchmarks/pretraining_study.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

#: name -> (DIMPretrainer options, description); None: the untrained network.
VARIANTS: dict[str, tuple[dict | None, str]] = {
    "untrained": (None, "initial weights (fine-tuning: Site-Net from scratch)"),
    "shipped_run": (
        {},
        "the shipped run's latest checkpoint (benchmarks/pretraining: 79,103 structures)",
    ),
    "base": ({}, "the shipped run's objective: JSD, KL weight 0.1, no engineered negatives"),
    "kl0": ({"kl_weight": 0.0}, "base without the KL penalty (no information bottleneck)"),
    "infonce": ({"mi_estimator": "infonce"}, "base with the InfoNCE estimator"),
    "engineered": ({"engineered_negatives": True}, "base with the engineered negatives"),
}
N_LABELS, N_DEV, LABEL_SEEDS, FINETUNE_SEEDS = 250, 1000, 3, 2


def _finetune_score(n: int) -> str:
    return "finetune" if n == N_LABELS else f"finetune_{n}"


def _development(data: Path, cache: Path) -> tuple[dict, pd.Series, list, dict]:
    """Featurized development structures of mp36k (training split only) and their labels."""
    from label_masking import _train_test_ids

    from skdim.datasets import load_featurized, load_structures_csv, save_featurized
    from skdim.featurize import featurize

    train, _ = _train_test_ids("eform", data, np.random.default_rng(0))
    pick = np.random.default_rng(556).choice(train, N_DEV + N_LABELS * LABEL_SEEDS, replace=False)
    path = cache / "development.npz"
    if not path.exists():
        structures, targets = load_structures_csv(
            data / "mp36k.csv.gz", target="e_form_per_atom", id_col="mp_id", ids=pick.tolist()
        )
        inputs = featurize(structures, on_error="skip")
        keep = [k for k, x in enumerate(inputs) if x is not None]
        save_featurized(
            path,
            [inputs[k] for k in keep],
            ids=[structures.index[k] for k in keep],
            targets=[float(targets.iloc[k]) for k in keep],
        )
    inputs, meta = load_featurized(path)
    by_id = dict(zip(meta["ids"], inputs))
    y = pd.Series(meta["targets"], index=meta["ids"])
    ids = [i for i in pick if i in by_id]
    dev = ids[:N_DEV]
    labelled = {s: ids[N_DEV + N_LABELS * s : N_DEV + N_LABELS * (s + 1)] for s in range(3)}
    return by_id, y, dev, labelled


def _pretrained(name: str, args, cache: Path, sample: list):
    """The variant's fitted DIMPretrainer (pretrained once, cached) and its seconds."""
    from _masking_encoders import checkpoint_encoder, untrained_encoder

    from skdim import DIMPretrainer
    from skdim.datasets import load_featurized

    options, _ = VARIANTS[name]
    if options is None:
        return untrained_encoder(sample), 0.0
    folder = cache / name
    if name == "shipped_run":  # the long run's weights, as its checkpoint holds them
        checkpoint = Path(args.pretraining_work) / "checkpoints"
        history = json.loads((checkpoint / "history.json").read_text())
        model = checkpoint_encoder(checkpoint, sample)
        model.save(folder)  # fine-tuning reads the encoder from a folder
        return model, float(sum(row["dur"] for row in history))
    cost = cache / f"{name}_cost.json"
    if not (folder / "config.json").exists():
        inputs, meta = load_featurized(Path(args.pretraining_work) / "featurized.npz")
        order = np.random.default_rng(0).permutation(len(inputs))[: args.n_pretrain]
        start = time.perf_counter()
        model = DIMPretrainer(
            **{"engineered_negatives": False, **options},
            max_epochs=args.epochs,
            lr_schedule="constant",
            random_state=0,
            checkpoint_dir=str(cache / f"{name}_checkpoints"),
            verbose=1,
        ).fit([inputs[k] for k in sorted(order)])
        model.save(folder)
        cost.write_text(json.dumps({"seconds": time.perf_counter() - start}))
    return DIMPretrainer.load(folder), json.loads(cost.read_text())["seconds"]


def _summary_pool(model, inputs: list, with_std: bool = False) -> np.ndarray:
    """Mean (and standard deviation) over sites of the pre-bottleneck site summaries."""
    encoder = model.module_.encoder

    def forward(batch):
        summary = encoder.encode_sites(**batch)[1]
        mask = batch["site_mask"][..., None].to(summary.dtype)
        mean = (summary * mask).sum(1) / mask.sum(1)
        if not with_std:
            return mean
        var = (((summary - mean[:, None]) ** 2) * mask).sum(1) / mask.sum(1)
        return torch.cat([mean, var.sqrt()], dim=-1)

    return model._forward_sorted(inputs, forward).astype(np.float32)


def _run_variant(name: str, args, cache: Path) -> None:
    from _masking_features import input_stats
    from label_masking import _downstream

    from skdim import SiteNetRegressor

    by_id, y, dev, labelled = _development(Path(args.data), cache)
    rows_path = cache / f"{name}_rows.csv"  # one file per variant: variants run in parallel
    done = pd.read_csv(rows_path) if rows_path.exists() else pd.DataFrame(columns=["variant"])
    finished = set(zip(done.get("variant", []), done.get("score", []), done.get("seed", [])))
    model, seconds = _pretrained(name, args, cache, [by_id[i] for i in dev[:50]])
    every = dev + [i for subset in labelled.values() for i in subset]
    X = [by_id[i] for i in every]
    tables = {
        "pooled": dict(zip(every, model.transform(X))),
        "summary_mean": dict(zip(every, _summary_pool(model, X))),
        "summary_meanstd": dict(zip(every, _summary_pool(model, X, with_std=True))),
    }
    if VARIANTS[name][0] is None:  # the untrained row also carries the no-network reference
        tables["input_stats"] = dict(zip(every, input_stats(X)))
    y_dev = y.loc[dev].to_numpy()

    def record(score: str, seed: int, mae: float, fit_s: float) -> None:
        row = {"variant": name, "score": score, "seed": seed, "dev_mae": round(mae, 4)}
        row.update({"fit_s": round(fit_s, 1), "pretrain_s": round(seconds)})
        pd.DataFrame([row]).to_csv(rows_path, mode="a", header=not rows_path.exists(), index=False)
        print(row, flush=True)

    for embedding, table in tables.items():
        for model_name in ("ridge", "rf"):
            for seed, subset in labelled.items():
                score = f"{model_name}_{embedding}"
                if (name, score, seed) in finished:
                    continue
                start = time.perf_counter()
                downstream = _downstream(model_name, 300, seed)
                downstream.fit(np.stack([table[i] for i in subset]), y.loc[subset].to_numpy())
                prediction = downstream.predict(np.stack([table[i] for i in dev]))
                mae = float(np.abs(prediction - y_dev).mean())
                record(score, seed, mae, time.perf_counter() - start)
    folder = None if VARIANTS[name][0] is None else str(cache / name)  # scratch: None
    for n in args.finetune_ns:
        for seed in range(args.finetune_seeds):
            if (name, _finetune_score(n), seed) in finished:
                continue
            start = time.perf_counter()
            subset = labelled[seed][:n]
            regressor = SiteNetRegressor(pretrained=folder, random_state=seed, verbose=0)
            regressor.fit([by_id[i] for i in subset], y.loc[subset].to_numpy())
            mae = float(np.abs(regressor.predict([by_id[i] for i in dev]) - y_dev).mean())
            record(_finetune_score(n), seed, mae, time.perf_counter() - start)


def _report(args, cache: Path) -> None:
    parts = [pd.read_csv(cache / f"{name}_rows.csv") for name in VARIANTS
             if (cache / f"{name}_rows.csv").exists()]  # fmt: skip
    rows = pd.concat(parts, ignore_index=True)
    rows.to_csv(args.rows, index=False)
    table = rows.pivot_table(index="variant", columns="score", values="dev_mae", aggfunc="median")
    order = [v for v in VARIANTS if v in table.index]
    table = table.loc[order]
    label_counts = sorted(
        {*args.finetune_ns, N_LABELS}
        | {int(c.split("_")[1]) for c in table.columns if c.startswith("finetune_")}
    )
    scores = [c for c in (*(_finetune_score(n) for n in label_counts), "ridge_pooled",
                          "rf_pooled", "ridge_summary_mean", "rf_summary_mean",
                          "ridge_summary_meanstd", "rf_summary_meanstd")
              if c in table.columns]  # fmt: skip
    lines = [
        "# DIM objective study (development split, mp36k formation energy)",
        "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py --variants ...` "
        f"(--n-pretrain {args.n_pretrain} --epochs {args.epochs})  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}  ",
        f"Median development MAE (eV/atom) over seeds: {N_LABELS} labels, {N_DEV} development "
        "structures of the mp36k training split; `finetune`: Site-Net fine-tuned with the "
        "default recipe (2 seeds; `finetune_50`, `finetune_100`: 3 seeds, on the first 50 and "
        "100 of the 250 labels); the others: ridge / random forest on the embeddings (3 seeds).",
        "",
        "| variant | " + " | ".join(scores) + " | pretraining s | what |",
        "|---|" + "---:|" * (len(scores) + 1) + "---|",
    ]
    for variant in order:
        cells = [
            "" if pd.isna(table.at[variant, c]) else f"{table.at[variant, c]:.3f}" for c in scores
        ]
        pretrain_s = rows.loc[rows["variant"] == variant, "pretrain_s"].max()
        lines.append(
            f"| {variant} | "
            + " | ".join(cells)
            + f" | {pretrain_s:.0f} | {VARIANTS[variant][1]} |"
        )
    reference = rows[rows["score"].str.endswith("_input_stats")]
    if len(reference):
        medians = reference.groupby("score")["dev_mae"].median()
        lines += [
            "",
            "Without any network: ridge / random forest on the mean, standard deviation, minimum "
            "and maximum over sites of the encoder's input site features (`input_stats`): "
            f"{medians.get('ridge_input_stats', float('nan')):.3f} / "
            f"{medians.get('rf_input_stats', float('nan')):.3f}.",
        ]
    path = Path(args.out)
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=[])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--n-pretrain", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--finetune-ns", type=int, nargs="+", default=[N_LABELS])
    parser.add_argument("--finetune-seeds", type=int, default=FINETUNE_SEEDS)
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--pretraining-work", default="benchmarks/pretraining")
    parser.add_argument("--cache-dir", default="benchmarks/cache/pretraining_study")
    parser.add_argument("--rows", default="benchmarks/results/pretraining_study.csv")
    parser.add_argument("--out", default="benchmarks/results/pretraining_study.md")
    args = parser.parse_args(argv)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        _run_variant(name, args, cache)
    if args.report:
        _report(args, cache)


if __name__ == "__main__":
    main()
