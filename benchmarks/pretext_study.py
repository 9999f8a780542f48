"""Which pretraining objective learns structure: a study on development splits.

Every variant pretrains the "dim" Site-Net encoder, without labels, on the
same 10,000 structures (the formation-energy split's pretraining set, from the
mp36k training split; ``benchmarks/cache/full_v2/eform_split.json``) with the
same recipe (``DIMPretrainer`` defaults: plateau schedule, at most 30 epochs,
seed 0). ``dim_paper`` is the label-masking benchmark's protocol DIM model of
that set (the paper's objective, engineered negatives off), reused as it is.
Variants are scored on the *development* splits of three tasks, never a test
set:

* ``eform``: mp36k formation energy (training ids that are neither pretrained
  nor labelled in the label-masking split);
* ``gap``: matbench mp_gap band gap (fold-0 training ids outside the
  label-masking split's pretraining and labelled sets);
* ``gvrh``: log10 of the shear modulus G_VRH (GPa), from ``elasticity3k``;
  1,000 structures are its test split (kept for the benchmark, recorded in
  ``benchmarks/splits/gvrh_split.json``), the rest is training and development.

Each task's development split is an evaluation set (1,000 structures; 500 for
gvrh) and, per label seed, a labelled block whose prefixes are the N-label
subsets (disjoint across seeds for eform and gap; for gvrh, whose training
set is small, seeded draws from the same pool that may overlap).

Stage 1 (every variant): ridge and a random forest (300 trees, a third of
the features per split) on ``input_stats`` (the
encoder's input site features pooled, no network) plus the variant's
embedding (``frozen_*``; ``embedding`` column: "pooled", the default
transform, or "site_stats", mean/std/min/max of the pre-bottleneck site
representations) at N = 250 and 1000 with 5 label seeds, and Site-Net
fine-tuned from the variant with the default recipe at N = 250, 3 seeds.
The references ``stats_ridge`` and ``stats_rf`` (``input_stats`` alone) are
written once, under variant ``none``. Stage 2 (``--stage 2``): fine-tuning at
N = 100, 250 and 1000 (5 seeds at N <= 250, 3 at N = 1000) for the variants
named. ``untrained`` fine-tunes from scratch and embeds with the initial
weights.

Rows are appended to ``benchmarks/results/pretext_study.csv`` as they finish
(columns ``task, n, seed, variant, mode, embedding, mae, seconds``), and a
rerun skips every finished row; pretraining resumes from its checkpoints.

Usage (one process per core)::

    OMP_NUM_THREADS=1 python benchmarks/pretext_study.py --pretrain dim_fixed
    OMP_NUM_THREADS=1 python benchmarks/pretext_study.py --pretrain strain masked
    OMP_NUM_THREADS=1 python benchmarks/pretext_study.py --stage 1 --variants untrained dim_paper
    python benchmarks/pretext_study.py --report
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CSV_PATH = RESULTS / "pretext_study.csv"
COLUMNS = ["task", "n", "seed", "variant", "mode", "embedding", "mae", "seconds"]

#: Variant -> DIMPretrainer options (None: the initial weights; "reuse": a saved model).
VARIANTS: dict[str, dict | str | None] = {
    "untrained": None,
    "dim_paper": "reuse",
    "dim_fixed": {"objective": "dim_fixed"},
    "strain": {"objective": "strain"},
    "masked": {"objective": "masked"},
    "dim_fixed+strain": {"objective": "dim_fixed+strain"},
    "dim_fixed+masked": {"objective": "dim_fixed+masked"},
}
DESCRIPTIONS = {
    "untrained": "initial weights (fine-tuning: Site-Net from scratch)",
    "dim_paper": "the paper's DIM objective (label-masking protocol DIM, no engineered negatives)",
    "dim_fixed": "DIM without the shortcuts (objective='dim_fixed')",
    "strain": "strain regression (objective='strain')",
    "masked": "masked-site element prediction (objective='masked')",
    "dim_fixed+strain": "dim_fixed + strain, summed (objective='dim_fixed+strain')",
    "dim_fixed+masked": "dim_fixed + masked, summed (objective='dim_fixed+masked')",
}
TASK_FILES = {
    "eform": ("mp36k.csv.gz", "mp_id", "e_form_per_atom", "identity"),
    "gap": ("matbench_mp_gap.csv.gz", "matbench_id", "gap_pbe", "trelu"),
    "gvrh": ("elasticity3k.csv.gz", "material_id", "G_VRH", "identity"),
}
UNITS = {"eform": "eV/atom", "gap": "eV", "gvrh": "log10(GPa)"}
N_EVAL = {"eform": 1000, "gap": 1000, "gvrh": 500}
FROZEN_NS, FROZEN_SEEDS = (250, 1000), 5
STAGE1_FINETUNE = {250: 3}
STAGE2_FINETUNE = {100: 5, 250: 5, 1000: 3}
N_GVRH_TEST = 1000


def gvrh_split(data: Path) -> dict:
    """The log10 G_VRH task's fixed split: 1,000 test ids, the rest for training.

    Seeded (numpy ``default_rng(0)`` permutation of the file's ids); written to
    ``benchmarks/splits/gvrh_split.json`` so the benchmark reads the same ids.
    """
    ids = pd.read_csv(data / "elasticity3k.csv.gz", usecols=["material_id"])["material_id"]
    order = np.random.default_rng(0).permutation(len(ids))
    test = sorted(ids.iloc[order[:N_GVRH_TEST]].tolist())
    train = sorted(ids.iloc[order[N_GVRH_TEST:]].tolist())
    return {"test": test, "train": train, "seed": 0, "file": "elasticity3k.csv.gz"}


def development_split(task: str, data: Path) -> dict:
    """Evaluation ids and labelled blocks (seed -> ids, prefixes nested) of a task."""
    import sys

    sys.path.insert(0, str(HERE))
    if task == "gvrh":
        train = np.array(gvrh_split(data)["train"])
        rng = np.random.default_rng(2026)
        order = rng.permutation(len(train))
        evaluation = sorted(train[order[: N_EVAL[task]]].tolist())
        pool = train[order[N_EVAL[task] :]]
        block = min(1000, len(pool))
        labelled = {
            s: pool[np.random.default_rng(3000 + s).permutation(len(pool))[:block]].tolist()
            for s in range(FROZEN_SEEDS)
        }
        return {"eval": evaluation, "labelled": labelled}
    from _masking_split import _development_ids

    split = json.loads((HERE / "cache" / "full_v2" / f"{task}_split.json").read_text())
    ids = _development_ids(task, data, split, N_EVAL[task] + 1000 * FROZEN_SEEDS, seed=2026)
    ids = np.array(ids)[np.random.default_rng(2026).permutation(len(ids))]
    evaluation = sorted(ids[: N_EVAL[task]].tolist())
    rest = ids[N_EVAL[task] :]
    labelled = {s: rest[1000 * s : 1000 * (s + 1)].tolist() for s in range(FROZEN_SEEDS)}
    return {"eval": evaluation, "labelled": labelled}


def _featurized(path: Path, data: Path, task_file: tuple, ids: list, log10: bool, n_jobs: int):
    """Site-Net inputs and targets by id, featurized once and cached as .npz."""
    from skdim.datasets import load_featurized, load_structures_csv, save_featurized
    from skdim.featurize import featurize

    if not path.exists():
        name, id_col, target, _ = task_file
        structures, y = load_structures_csv(
            data / name, target=target, id_col=id_col, ids=sorted(ids), n_jobs=n_jobs
        )
        inputs = featurize(structures, max_atoms=50, on_error="skip", n_jobs=n_jobs)
        keep = [k for k, x in enumerate(inputs) if x is not None]
        values = np.asarray(y, dtype=float)
        if log10:
            values = np.log10(values)
        save_featurized(
            path,
            [inputs[k] for k in keep],
            ids=[str(structures.index[k]) for k in keep],
            targets=[float(values[k]) for k in keep],
        )
    inputs, meta = load_featurized(path)
    return dict(zip(meta["ids"], inputs)), dict(zip(meta["ids"], meta["targets"]))


def pretrain_inputs(data: Path, cache: Path, n_jobs: int) -> list:
    """The 10,000 pretraining structures (formation-energy split), featurized."""
    split = json.loads((HERE / "cache" / "full_v2" / "eform_split.json").read_text())
    by_id, _ = _featurized(
        cache / "pretrain.npz", data, TASK_FILES["eform"], split["pretrain"], False, n_jobs
    )
    return [by_id[i] for i in split["pretrain"] if i in by_id]


def pretrained(variant: str, data: Path, cache: Path, n_jobs: int = 1):
    """Folder of the variant's saved DIMPretrainer (pretraining it if needed), or None."""
    from skdim import DIMPretrainer

    options = VARIANTS[variant]
    if options is None:
        return None
    if options == "reuse":
        return HERE / "cache" / "full_v2" / "eform_dim"
    folder = cache / variant
    if not (folder / "config.json").exists():
        inputs = pretrain_inputs(data, cache, n_jobs)
        start = time.perf_counter()
        model = DIMPretrainer(
            **options,
            max_epochs=30,
            random_state=0,
            verbose=1,
            checkpoint_dir=str(cache / f"{variant}_checkpoints"),
        ).fit(inputs)
        model.save(folder)
        history = model.history
        cost = {
            "seconds": float(sum(history[:, "dur"])),
            "wall_seconds_this_process": time.perf_counter() - start,
            "structures": len(inputs),
            "epochs": len(history),
            "stopped": bool(history[-1].get("stopped", False)),
        }
        (cache / f"{variant}_cost.json").write_text(json.dumps(cost))
    return folder


def _embedder(variant: str, data: Path, cache: Path, inputs: list):
    from skdim import DIMPretrainer

    folder = pretrained(variant, data, cache)
    if folder is None:
        import sys

        sys.path.insert(0, str(HERE))
        from _masking_encoders import untrained_encoder

        return untrained_encoder(inputs)
    return DIMPretrainer.load(folder)


def _done() -> set:
    if not CSV_PATH.exists():
        return set()
    frame = pd.read_csv(CSV_PATH, keep_default_na=False)
    return {
        (r.task, int(r.n), int(r.seed), r.variant, r.mode, r.embedding)
        for r in frame.itertuples()
    }


def _append(row: dict) -> None:
    new = not CSV_PATH.exists()
    with open(CSV_PATH, "a", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _task_data(task: str, data: Path, cache: Path, n_jobs: int):
    split = development_split(task, data)
    ids = sorted(set(split["eval"]) | {i for b in split["labelled"].values() for i in b})
    inputs, y = _featurized(
        cache / f"{task}_dev.npz", data, TASK_FILES[task], ids, task == "gvrh", n_jobs
    )
    evaluation = [i for i in split["eval"] if i in inputs]
    labelled = {s: [i for i in b if i in inputs] for s, b in split["labelled"].items()}
    return inputs, y, evaluation, labelled


def downstream(kind: str, seed: int):
    """Ridge (penalty by leave-one-out CV) or a forest of 300 trees on a third of the features.

    A third of the features per split (Breiman's rule for regression) keeps
    the forest on 300-column tables affordable and is the same for every arm.
    """
    import sys

    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    sys.path.insert(0, str(HERE))
    from _masking_arms import downstream as masking_downstream

    if kind == "ridge":
        return masking_downstream("ridge", 300, seed)
    forest = RandomForestRegressor(300, max_features=1 / 3, random_state=seed, n_jobs=1)
    return make_pipeline(SimpleImputer(), forest)


def frozen_rows(task: str, variant: str, data: Path, cache: Path, done: set) -> None:
    """Ridge and forest on input_stats (+ the variant's embeddings)."""
    import sys

    sys.path.insert(0, str(HERE))
    from _masking_features import input_stats

    inputs, y, evaluation, labelled = _task_data(task, data, cache, 1)
    ids = sorted(set(evaluation) | {i for b in labelled.values() for i in b})
    stats = pd.DataFrame(input_stats([inputs[i] for i in ids]), index=ids)
    tables = {"": stats}
    if variant != "none":
        model = _embedder(variant, data, cache, [inputs[i] for i in ids])
        for embedding in ("pooled", "site_stats"):
            model.set_params(embedding=embedding, verbose=0)
            emb = pd.DataFrame(model.transform([inputs[i] for i in ids]), index=ids)
            tables[embedding] = pd.concat([stats, emb], axis=1, ignore_index=True)
        del tables[""]
    y_eval = np.array([y[i] for i in evaluation])
    for embedding, table in tables.items():
        for n in FROZEN_NS:
            for seed in range(FROZEN_SEEDS):
                for kind in ("ridge", "rf"):
                    mode = f"{'stats' if variant == 'none' else 'frozen'}_{kind}"
                    key = (task, n, seed, variant, mode, embedding)
                    if key in done:
                        continue
                    train = labelled[seed][:n]
                    start = time.perf_counter()
                    model_ = downstream(kind, seed).fit(
                        table.loc[train].to_numpy(), np.array([y[i] for i in train])
                    )
                    pred = model_.predict(table.loc[evaluation].to_numpy())
                    mae = float(np.mean(np.abs(pred - y_eval)))
                    _append(dict(zip(COLUMNS, [*key, mae, time.perf_counter() - start])))
                    print(task, variant, mode, embedding, n, seed, f"{mae:.4f}", flush=True)


def finetune_rows(task: str, variant: str, plan: dict, data: Path, cache: Path, done: set):
    """Site-Net fine-tuned from the variant (default recipe) on N labels, per seed."""
    from skdim import SiteNetRegressor

    inputs, y, evaluation, labelled = _task_data(task, data, cache, 1)
    folder = pretrained(variant, data, cache)
    y_eval = np.array([y[i] for i in evaluation])
    for n, seeds in plan.items():
        for seed in range(seeds):
            key = (task, n, seed, variant, "finetune", "")
            if key in done:
                continue
            train = labelled[seed][:n]
            start = time.perf_counter()
            model = SiteNetRegressor(
                pretrained=None if folder is None else str(folder),
                output=TASK_FILES[task][3],
                random_state=seed,
                verbose=0,
            ).fit([inputs[i] for i in train], np.array([y[i] for i in train]))
            pred = model.predict([inputs[i] for i in evaluation]).ravel()
            mae = float(np.mean(np.abs(pred - y_eval)))
            _append(dict(zip(COLUMNS, [*key, mae, time.perf_counter() - start])))
            print(task, variant, "finetune", n, seed, f"{mae:.4f}", flush=True)


def _paired_change(own: pd.Series, reference: pd.Series) -> float:
    """Median over common seeds of the per-seed relative change, in percent."""
    common = own.index.intersection(reference.index)
    if len(common) == 0:
        return float("nan")
    return float(((own[common] - reference[common]) / reference[common]).median() * 100)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, n, variant, mode, embedding): seeds, median MAE, paired changes.

    ``vs_untrained``: the median per-seed change against ``untrained`` in the
    same mode and embedding; ``vs_stats``: for ``frozen_*``, against
    ``input_stats`` alone with the same model (negative is better).
    """
    rows = []
    keys = ["task", "n", "variant", "mode", "embedding"]
    indexed = frame.set_index([*keys, "seed"])["mae"].sort_index()
    for key, part in frame.groupby(keys, sort=False):
        task, n, variant, mode, embedding = key
        own = part.set_index("seed")["mae"]

        def reference(variant_, mode_, embedding_, cell=(task, n)):
            try:
                return indexed.loc[(*cell, variant_, mode_, embedding_)]
            except KeyError:
                return pd.Series(dtype=float)

        row = dict(zip(keys, key), seeds=len(own), median=own.median())
        row["vs_untrained"] = (
            float("nan") if variant == "untrained"
            else _paired_change(own, reference("untrained", mode, embedding))
        )  # fmt: skip
        row["vs_stats"] = (
            _paired_change(own, reference("none", mode.replace("frozen", "stats"), ""))
            if mode.startswith("frozen") else float("nan")
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row: pd.Series | None, change: str) -> str:
    if row is None:
        return ""
    text = f"{row['median']:.3f}"
    if np.isfinite(row[change]):
        text += f" ({row[change]:+.1f} %)"
    return text + ("" if row["seeds"] >= 3 else f" [{row['seeds']} seed]")


def report() -> str:
    """Markdown: per mode, each variant's median and paired change in every (task, N) cell."""
    frame = pd.read_csv(CSV_PATH, keep_default_na=False)
    table = summary(frame)
    lines = [
        "# Pretext study (development splits; never a test set)",
        "",
        "Command: `OMP_NUM_THREADS=1 python benchmarks/pretext_study.py --pretrain VARIANT`, "
        "then `--stage 1 --variants VARIANT ...` (one process per core) and `--report`.  ",
        f"Machine: {os.uname().machine}, {os.cpu_count()} cores.  ",
        "Pretraining: the same 10,000 structures (the formation-energy split's pretraining "
        "set), DIMPretrainer defaults (plateau schedule, at most 30 epochs, seed 0).  ",
        "Scores: MAE on each task's development evaluation set (eform: eV/atom, 1,000 "
        "structures; gap: eV, 1,000; gvrh: log10(GPa), 500), median over label seeds; in "
        "brackets the median paired per-seed change (negative is better) against "
        "`untrained` (fine-tuning: Site-Net from scratch) or, for the frozen embeddings, "
        "against `input_stats` alone with the same model.",
        "",
        "Variants: " + "; ".join(f"`{k}`: {v}" for k, v in DESCRIPTIONS.items()) + ".",
        "",
    ]
    cost_lines = []
    for variant in VARIANTS:
        path = HERE / "cache" / "pretext" / f"{variant}_cost.json"
        if variant == "dim_paper":
            path = HERE / "cache" / "full_v2" / "eform_pretrain.json"
        history = HERE / "cache" / "pretext" / f"{variant}_checkpoints" / "history.json"
        if not path.exists() and history.exists():
            done = len(json.loads(history.read_text()))
            cost_lines.append(f"`{variant}` still pretraining ({done} epochs checkpointed)")
        if path.exists():
            cost = json.loads(path.read_text())
            stop = " (plateau stop)" if cost.get("stopped") else ""
            seconds = cost["seconds"]
            cost_lines.append(f"`{variant}` {cost['epochs']} epochs, {seconds:.0f} s{stop}")
    if cost_lines:
        lines += ["Pretraining (one core each): " + "; ".join(cost_lines) + ".", ""]
    sections = [("finetune", "", "Site-Net fine-tuned (default recipe)", "vs_untrained")]
    for mode, model in (("frozen_ridge", "Ridge"), ("frozen_rf", "Forest")):
        for embedding in ("pooled", "site_stats"):
            title = f"{model} on input_stats + embedding ({embedding})"
            sections.append((mode, embedding, title, "vs_stats"))
    for mode, embedding, title, change in sections:
        part = table[(table["mode"] == mode) & (table.embedding == embedding)]
        if part.empty:
            continue
        cells = sorted({(t, int(n)) for t, n in zip(part.task, part.n)},
                       key=lambda c: (list(TASK_FILES).index(c[0]), c[1]))  # fmt: skip
        lines += [f"## {title}", "",
                  "| variant | " + " | ".join(f"{t} N={n}" for t, n in cells) + " |",
                  "|---|" + "---:|" * len(cells)]  # fmt: skip
        if mode.startswith("frozen"):
            stats = table[table["mode"] == mode.replace("frozen", "stats")]
            row = []
            for t, n in cells:
                match = stats[(stats.task == t) & (stats.n == n)]
                row.append(_cell(match.iloc[0], "vs_stats") if len(match) else "")
            lines.append("| input_stats alone | " + " | ".join(row) + " |")
        for variant in VARIANTS:
            own = part[part.variant == variant]
            if own.empty:
                continue
            row = []
            for t, n in cells:
                match = own[(own.task == t) & (own.n == n)]
                row.append(_cell(match.iloc[0], change) if len(match) else "")
            lines.append(f"| {variant} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--cache-dir", default=str(HERE / "cache" / "pretext"))
    parser.add_argument("--pretrain", nargs="*", default=[], choices=list(VARIANTS))
    parser.add_argument("--stage", type=int, choices=(1, 2))
    parser.add_argument("--variants", nargs="*", default=[], choices=[*VARIANTS, "none"])
    parser.add_argument("--tasks", nargs="*", default=["eform", "gap", "gvrh"])
    parser.add_argument("--frozen-only", action="store_true")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    data, cache = Path(args.data), Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    splits = HERE / "splits"
    splits.mkdir(exist_ok=True)
    split_path = splits / "gvrh_split.json"
    if not split_path.exists():
        split_path.write_text(json.dumps(gvrh_split(data), indent=0))
    for variant in args.pretrain:
        print("pretrained:", pretrained(variant, data, cache, args.n_jobs), flush=True)
    for variant in args.variants:
        for task in args.tasks:
            frozen_rows(task, variant, data, cache, _done())
            if variant == "none" or args.frozen_only:
                continue
            plan = STAGE1_FINETUNE if args.stage == 1 else STAGE2_FINETUNE
            finetune_rows(task, variant, plan, data, cache, _done())
    if args.report:
        (RESULTS / "pretext_study.md").write_text(report() + "\n")
        print(report())


if __name__ == "__main__":
    main()
