"""Pretrain the DIM encoder that skdim ships, on Materials Project without labels.

The data: every structure of ``matbench_mp_gap``'s official fold-0 training
set, minus every structure that also appears in the ``mp36k``
formation-energy test split of the label-masking benchmark or in the log10
G_VRH test split (``benchmarks/splits/gvrh_split.json``), matched by
:func:`skdim.overlap.shared_structures`. One model is then label-clean for
the three benchmark tasks: no test structure of any was seen, and no label
is read anywhere (the checkpoint is chosen by the self-supervised validation
loss). ``--objective`` chooses the pretraining objective
(``DIMPretrainer(objective=...)``); a work folder whose ``ids.json`` was
made before the G_VRH split existed (no ``n_gvrh_test``) is refused.

Steps, each cached under ``--work`` so that the run resumes where it stopped:

1. ``ids.json``: the pretraining ids and the excluded ones (with the reason);
2. ``featurized.npz``: the featurized structures;
3. ``checkpoints/``: the DIM run, checkpointed every epoch; run the script
   again to resume it (the run stops by itself when the validation loss has
   plateaued);
4. once the run has stopped on its plateau, ``--export NAME`` ships the
   encoder: ``skdim/models/NAME`` (weights, config, model card facts) and
   its sha256 in ``skdim/models/registry.json``, and the loss curves plot
   ``docs/images/pretrained_loss.png``.

Usage::

    python benchmarks/pretrain_encoder.py --work benchmarks/pretraining
    python benchmarks/pretrain_encoder.py --work benchmarks/pretraining --export dim-mp-gap-fold0

The ids (``ids.json``) and the checkpoints are committed; the structures and
their features are rebuilt from ``$SKDIM_DATA`` when missing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _fold0_train_ids(data: Path) -> list[str]:
    ids = pd.read_csv(data / "matbench_mp_gap.csv.gz", usecols=["matbench_id"])["matbench_id"]
    with gzip.open(data / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        test = set(json.load(handle)["folds"]["fold_0"]["test"])
    return [i for i in ids if i not in test]


def _eform_test_ids(data: Path) -> list[str]:
    """The mp36k test split of the label-masking benchmark (seeded 80/20, seed 0)."""
    from label_masking import _train_test_ids

    _, test = _train_test_ids("eform", data, np.random.default_rng(0))
    return sorted(test.tolist())


def _gvrh_test_ids() -> list[str]:
    """The log10 G_VRH test split (elasticity3k material ids) the pretext study fixed."""
    split = Path(__file__).resolve().parent / "splits" / "gvrh_split.json"
    return json.loads(split.read_text())["test"]


def select_ids(data: Path, work: Path, n_jobs: int) -> dict:
    """Pretraining ids: fold-0 training set of mp_gap minus the two test splits' structures."""
    from skdim.datasets import load_structures_csv
    from skdim.overlap import shared_structures

    path = work / "ids.json"
    if path.exists():
        selection = json.loads(path.read_text())
        if "n_gvrh_test" not in selection:
            raise SystemExit(
                f"{path} was selected before the log10 G_VRH test split existed and may hold "
                "its structures: use a new --work folder"
            )
        return selection
    start = time.perf_counter()
    train_ids = _fold0_train_ids(data)
    test_ids = _eform_test_ids(data)
    print(f"parsing {len(train_ids)} mp_gap fold-0 training structures", flush=True)
    train, _ = load_structures_csv(
        data / "matbench_mp_gap.csv.gz",
        id_col="matbench_id",
        ids=train_ids,
        n_jobs=n_jobs,
        progress=True,
    )
    test, _ = load_structures_csv(
        data / "mp36k.csv.gz", id_col="mp_id", ids=test_ids, n_jobs=n_jobs, progress=True
    )
    gvrh_ids = _gvrh_test_ids()
    gvrh, _ = load_structures_csv(
        data / "elasticity3k.csv.gz", id_col="material_id", ids=gvrh_ids, n_jobs=n_jobs
    )
    print("matching against the mp36k and log10 G_VRH test splits", flush=True)
    shared = shared_structures(train.tolist(), test.tolist() + gvrh.tolist())
    excluded = [train.index[i] for i in shared]
    keep = [i for i in train.index if i not in set(excluded)]
    selection = {
        "pretrain": keep,
        "excluded": excluded,
        "n_fold0_train": len(train_ids),
        "n_eform_test": len(test_ids),
        "n_gvrh_test": len(gvrh_ids),
        "seconds": time.perf_counter() - start,
    }
    path.write_text(json.dumps(selection))
    print(f"{len(keep)} structures kept, {len(excluded)} excluded", flush=True)
    return selection


def featurized(data: Path, work: Path, n_jobs: int) -> tuple[list, dict]:
    from skdim.datasets import load_featurized, load_structures_csv, save_featurized
    from skdim.featurize import featurize

    path = work / "featurized.npz"
    if not path.exists():
        ids = json.loads((work / "ids.json").read_text())["pretrain"]  # parsed again
        structures, _ = load_structures_csv(
            data / "matbench_mp_gap.csv.gz", id_col="matbench_id", ids=ids, n_jobs=n_jobs,
            progress=True,
        )  # fmt: skip
        start = time.perf_counter()
        inputs = featurize(structures, n_jobs=n_jobs, progress=True, on_error="skip")
        keep = [i for i, x in enumerate(inputs) if x is not None]
        save_featurized(
            path,
            [inputs[i] for i in keep],
            ids=[structures.index[i] for i in keep],
            seconds=time.perf_counter() - start,
        )
    return load_featurized(path)


def pretrain(work: Path, inputs: list, args) -> object:
    from skdim import DIMPretrainer

    model = DIMPretrainer(
        objective=args.objective,
        engineered_negatives=args.engineered_negatives,
        max_epochs=args.max_epochs,
        random_state=0,
        checkpoint_dir=str(work / "checkpoints"),
        verbose=1,
    )
    return model.fit(inputs)


def export(model, name: str, selection: dict, meta: dict) -> None:
    """Ship the trained encoder with its model card facts, and plot its loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import tempfile

    import matplotlib.pyplot as plt

    import skdim
    from skdim.pretrained import register_pretrained

    history = model.history
    n_valid = int(round(model.validation_fraction * len(meta["ids"])))
    card = {
        "n_structures": len(meta["ids"]),
        "n_train": len(meta["ids"]) - n_valid,
        "n_validation": n_valid,
        "dataset": "matbench_mp_gap (matbench v0.1, Materials Project)",
        "fold": "official fold 0, training set",
        "n_fold0_train": selection["n_fold0_train"],
        "exclusions": (
            f"{len(selection['excluded'])} structures that also appear in the mp36k "
            "formation-energy test split of the label-masking benchmark "
            f"({selection['n_eform_test']} structures, seeded 80/20 split, seed 0) or in the "
            f"log10 G_VRH test split ({selection['n_gvrh_test']} elasticity3k structures), "
            "matched by reduced formula and confirmed by pymatgen's StructureMatcher; "
            f"{selection['n_fold0_train'] - len(selection['excluded']) - len(meta['ids'])} "
            "structures that featurization refused"
        ),
        "labels_used": "none (checkpoint and stopping chosen on the DIM validation loss)",
        "featurization": model.featurization_,
        "objective": {
            "name": model.objective,
            "engineered_negatives": model.engineered_negatives,
            "global_trains_local": model.global_trains_local,
            "mi_estimator": model.mi_estimator,
            "embedding": model.embedding,
        },
        "epochs": len(history),
        "optimizer_steps": int(history[-1, "step"]),
        "lr": model.lr,
        "lr_schedule": model.lr_schedule,
        "stopped_on_plateau": bool(history[-1].get("stopped", False)),
        "final_valid_loss": float(history[-1, "valid_loss"]),
        "wall_time_s": float(sum(history[:, "dur"])),
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, CPU, 1 thread",
        "skdim_version": skdim.__version__,
        "torch_version": __import__("torch").__version__,
        "licence": "data: Materials Project, CC BY 4.0; weights: BSD-3-Clause",
    }
    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        register_pretrained(folder, name, card)
    epochs = range(1, len(history) + 1)
    labels = {"global_mi": "global MI estimate (nats)", "local_mi": "local MI estimate (nats)",
              "strain_metric": "strain error (%)", "masked_metric": "masked-site accuracy (%)"}
    curves = [("loss", f"loss ({model.objective})")]
    curves += [(k, labels[k]) for k in model._recorded if k in labels][:2]  # fmt: skip
    fig, axes = plt.subplots(1, len(curves), figsize=(3.7 * len(curves), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], curves):
        train = "train_loss" if key == "loss" else key
        ax.plot(epochs, history[:, train], label="training")
        ax.plot(epochs, history[:, f"valid_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(label)
    axes[0, 0].legend()
    fig.tight_layout()
    Path("docs/images").mkdir(parents=True, exist_ok=True)
    fig.savefig("docs/images/pretrained_loss.png", dpi=120)
    print(json.dumps(card, indent=2))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--work", default="benchmarks/pretraining")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--engineered-negatives", action="store_true")
    parser.add_argument(
        "--objective", default="dim_paper", help="DIMPretrainer(objective=...) of the run"
    )
    parser.add_argument("--prepare-only", action="store_true", help="stop after featurizing")
    parser.add_argument("--export", metavar="NAME", help="ship the finished run under NAME")
    args = parser.parse_args(argv)
    work, data = Path(args.work), Path(args.data)
    work.mkdir(parents=True, exist_ok=True)
    selection = select_ids(data, work, args.n_jobs)
    inputs, meta = featurized(data, work, args.n_jobs)
    print(f"{len(inputs)} featurized structures ({platform.node()})", flush=True)
    if args.prepare_only:
        return
    model = pretrain(work, inputs, args)
    if args.export:
        if not model.history[-1].get("stopped", False):
            raise SystemExit("the run has not converged yet (no plateau stop): resume it first")
        export(model, args.export, selection, meta)


if __name__ == "__main__":
    main()
