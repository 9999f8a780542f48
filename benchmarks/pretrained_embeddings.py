"""Do a pretrained encoder's embeddings help a random forest, as a user would use them?

The check of the shipped encoder (issue: "A DIM encoder pretrained on all of
Materials Project"): on mp36k formation energy, a random forest on the
encoder's embeddings against the same forest on an untrained encoder's
embeddings, with the same 250 labels and the same 1,000 test structures.

The split is the label-masking benchmark's (mp36k, seeded 80/20, seed 0):
labels are drawn from its training part, test structures from its test part,
which the shipped encoder never saw. Every label seed draws its own 250
labels; the test structures are fixed.

Usage::

    python benchmarks/pretrained_embeddings.py --encoder dim-mp-gap-fold0
    python benchmarks/pretrained_embeddings.py --checkpoint benchmarks/pretraining/checkpoints

``--encoder`` takes a shipped name or a saved model's folder; ``--checkpoint``
takes a pretraining run's checkpoint folder (its latest epoch), to follow a
run that has not finished. The table goes to
``benchmarks/results/pretrained_embeddings.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _split(data: Path, n_labels: int, n_test: int, seeds: int) -> tuple[dict, list]:
    from label_masking import _train_test_ids

    train, test = _train_test_ids("eform", data, np.random.default_rng(0))
    test_ids = sorted(np.random.default_rng(7).choice(test, n_test, replace=False).tolist())
    labelled = {
        seed: np.random.default_rng(100 + seed).choice(train, n_labels, replace=False).tolist()
        for seed in range(seeds)
    }
    return labelled, test_ids


def _encoder(args, sample: list):
    """The encoder to test, and a description of it."""
    from _masking_encoders import checkpoint_encoder

    from skdim import DIMPretrainer, load_pretrained
    from skdim.pretrained import list_pretrained

    if args.checkpoint:
        folder = Path(args.checkpoint)
        history = json.loads((folder / "history.json").read_text())
        return checkpoint_encoder(folder, sample), (
            f"pretraining checkpoint `{folder}` after epoch {len(history)} "
            f"({history[-1]['step']} steps, validation DIM loss {history[-1]['valid_loss']:.3f})"
        )
    if args.encoder in list_pretrained():
        model = load_pretrained(args.encoder)
        info = model.pretrained_info_
        return model, (
            f"shipped encoder `{args.encoder}` ({info['n_structures']} structures, "
            f"{info['epochs']} epochs)"
        )
    return DIMPretrainer.load(args.encoder), f"saved encoder `{args.encoder}`"


def main(argv: list[str] | None = None) -> None:
    from _masking_encoders import untrained_encoder
    from label_masking import _downstream

    from skdim.datasets import load_structures_csv
    from skdim.featurize import featurize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--encoder", help="a shipped name or a saved model's folder")
    source.add_argument("--checkpoint", help="a pretraining checkpoint folder")
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--n-labels", type=int, default=250)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument(
        "--models", nargs="+", default=["rf"], choices=["rf", "ridge", "knn", "mlp"]
    )
    parser.add_argument(
        "--embedding", choices=["pooled", "global"], help="override the encoder's embedding"
    )
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/pretrained_embeddings.md")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    labelled, test_ids = _split(Path(args.data), args.n_labels, args.n_test, args.seeds)
    ids = sorted({i for subset in labelled.values() for i in subset} | set(test_ids))
    structures, targets = load_structures_csv(
        Path(args.data) / "mp36k.csv.gz", target="e_form_per_atom", id_col="mp_id", ids=ids,
        n_jobs=args.n_jobs,
    )  # fmt: skip
    inputs = featurize(structures, n_jobs=args.n_jobs, on_error="skip")
    kept = [i for i, x in zip(structures.index, inputs) if x is not None]
    by_id = dict(zip(kept, [x for x in inputs if x is not None]))
    encoder, description = _encoder(args, [by_id[i] for i in kept[:50]])
    if args.embedding:
        encoder.set_params(embedding=args.embedding)
    untrained = untrained_encoder([by_id[i] for i in kept[:50]])
    untrained.set_params(embedding=encoder.embedding)
    embeddings = {
        name: dict(zip(kept, model.transform([by_id[i] for i in kept])))
        for name, model in (("pretrained", encoder), ("untrained", untrained))
    }
    test = [i for i in test_ids if i in by_id]
    y_test = targets.loc[test].to_numpy()
    rows = []
    for seed, subset in labelled.items():
        subset = [i for i in subset if i in by_id]
        y = targets.loc[subset].to_numpy()
        for model_name in args.models:
            row = {"seed": seed, "model": model_name}
            for name, table in embeddings.items():
                model = _downstream(model_name, args.trees, seed)
                model.fit(np.stack([table[i] for i in subset]), y)
                prediction = model.predict(np.stack([table[i] for i in test]))
                row[name] = float(np.abs(prediction - y_test).mean())
            rows.append(row)
            print(row, flush=True)
    medians = {
        model_name: (
            np.median([r["pretrained"] for r in rows if r["model"] == model_name]),
            np.median([r["untrained"] for r in rows if r["model"] == model_name]),
        )
        for model_name in args.models
    }
    source = f"--checkpoint {args.checkpoint}" if args.checkpoint else f"--encoder {args.encoder}"
    lines = [
        "# Downstream models on pretrained vs untrained embeddings (mp36k formation energy)",
        "",
        f"Command: `python benchmarks/pretrained_embeddings.py {source} "
        f"--models {' '.join(args.models)}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
        f"{time.perf_counter() - start:.0f} s  ",
        f"Encoder: {description}; embedding {encoder.embedding!r}.  ",
        f"{args.n_labels} labels from the training split (one draw per seed, {args.seeds} "
        f"seeds), {len(test)} test structures from the test split (never pretrained on); "
        "the label-masking benchmark's downstream models (random forest of "
        f"{args.trees} trees); median test MAE in eV/atom.",
        "",
        "| model | pretrained | untrained | pretrained better by |",
        "|---|---:|---:|---:|",
        *[
            f"| {m} | {p:.3f} | {u:.3f} | {100 * (1 - p / u):.1f} % |"
            for m, (p, u) in medians.items()
        ],
        "",
        "Per seed:",
        "",
        "| seed | model | pretrained | untrained |",
        "|---:|---|---:|---:|",
        *[
            f"| {r['seed']} | {r['model']} | {r['pretrained']:.3f} | {r['untrained']:.3f} |"
            for r in rows
        ],
    ]
    if "rf" in medians:
        p, u = medians["rf"]
        lines += [
            "",
            f"Random forest: the pretrained embeddings are {100 * (1 - p / u):.1f} % better "
            "than the untrained ones (the goal is at least 15 %).",
        ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
