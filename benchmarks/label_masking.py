"""Label-masking benchmark: does DIM pretraining pay off with 50-1000 labels.

Two tasks, each with a train/test split:

* ``gap``: matbench ``mp_gap`` (PBE band gap, eV), official fold 0;
* ``eform``: ``mp36k`` (formation energy, eV/atom), fixed random 80/20 split.

DIM is pretrained on training structures only, without labels (a seeded
subsample of ``n_pretrain`` that contains every labelled structure). For each
seed a nested series of labelled subsets (N = 50 ⊂ 100 ⊂ 250 ⊂ 1000) is drawn
from the training set, and every arm gets exactly the same subsets:

1. ``sitenet_scratch``: SiteNetRegressor from random weights;
2. ``sitenet_dim``: SiteNetRegressor fine-tuned from the DIM encoder;
3. ``dim_<model>``: RF, MLP, ridge and kNN on frozen DIM embeddings;
4. ``random_<model>``: the same on the embeddings of an untrained encoder;
5. ``xrd_<model>``, ``ofm_<model>``, ``magpie_ssf_<model>``: the same on matminer
   features (XRD powder pattern; orbital field matrix; composition Magpie
   ElementProperty + SiteStatsFingerprint);
6. ``mean``: the mean of the labelled targets.

Model selection uses only the labelled subset: fixed epoch budgets for
Site-Net, internal 5-fold CV for the ridge penalty and the kNN k, sklearn
defaults otherwise. Every test MAE is on the same fixed random subsample of
the task's test set. Everything is cached under ``--cache-dir``, and finished
rows are kept in the per-seed CSV, so an interrupted run resumes where it
stopped.

    python benchmarks/label_masking.py --quick   # < 20 min on 2 cores (CI smoke run)
    python benchmarks/label_masking.py --full    # hours on 2 cores; resumable

This is a research script of the source repository, not part of the
installed library (``skdim benchmark`` runs it from a source checkout, and
the other studies in ``benchmarks/`` import their split from it). Paths
default to ``benchmarks/cache`` and ``benchmarks/results`` under the working
directory. DIM is pretrained without the engineered negatives here: on CPU
they cost 2.2x the time per epoch and, in our ablation on the demo set, gave
no better embeddings; a longer run without them is the better use of the
budget.
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

PROFILES = {
    # n_pretrain: unlabelled training structures for DIM (a seeded subsample);
    # pool: labelled subsets are drawn from a fixed random pool of this many
    # training structures (bounds the matminer featurization cost).
    "quick": {
        "n_pretrain": 800,
        "pretrain_epochs": 3,
        "ns": [50],
        "seeds": 3,
        "pool": None,
        "n_test": 200,
        "finetune_steps": 20,
        "rf_trees": 100,
        "long_pretrain_epochs": None,
    },
    "full": {
        "n_pretrain": 5000,
        "pretrain_epochs": 6,
        "ns": [50, 100, 250, 1000],
        "seeds": 3,
        "pool": 1500,
        "n_test": 500,
        "finetune_steps": 200,
        "rf_trees": 300,
        # a second DIM model pretrained 3x longer on the same structures: the
        # one lever that moved results on the development split
        # (benchmarks/finetune_study.py); its arms are named *_long
        "long_pretrain_epochs": 18,
    },
}
TASKS = {
    "gap": {"label": "band gap (eV)", "target": "gap_pbe"},
    "eform": {"label": "formation energy (eV/atom)", "target": "e_form_per_atom"},
}
MATMINER = ("xrd", "ofm", "magpie_ssf")
MODELS = ("rf", "mlp", "ridge", "knn")


# ---------------------------------------------------------------- the data
def _train_test_ids(task: str, data: Path, rng: np.random.Generator) -> tuple:
    """All training and test ids of a task (mp_gap fold 0; mp36k seeded 80/20)."""
    if task == "gap":
        ids = pd.read_csv(data / "matbench_mp_gap.csv.gz", usecols=["matbench_id"])["matbench_id"]
        with gzip.open(data / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
            test_all = set(json.load(handle)["folds"]["fold_0"]["test"])
        train = np.array([i for i in ids if i not in test_all])
        test = np.array(sorted(test_all))
    else:
        ids = pd.read_csv(data / "mp36k.csv.gz", usecols=["mp_id"])["mp_id"].to_numpy()
        order = rng.permutation(len(ids))
        cut = int(0.8 * len(ids))
        train, test = ids[order[:cut]], ids[order[cut:]]
    return train, test


def _task_split(task: str, data: Path, profile: dict, seed: int = 0) -> dict:
    """Ids of the test subsample, the labelled subsets and the pretraining set."""
    rng = np.random.default_rng(seed)
    train, test = _train_test_ids(task, data, rng)
    test = test[np.sort(rng.choice(len(test), profile["n_test"], replace=False))]
    pool = train
    if profile["pool"]:
        pool = train[
            np.sort(np.random.default_rng(999).choice(len(train), profile["pool"], replace=False))
        ]
    labelled = {}
    for s in range(profile["seeds"]):
        pick = np.random.default_rng(1000 + s).choice(len(pool), max(profile["ns"]), replace=False)
        labelled[s] = pool[pick].tolist()  # prefixes give the nested subsets
    union = sorted({i for ids_ in labelled.values() for i in ids_})
    rest = np.setdiff1d(train, union)
    extra = max(0, min(profile["n_pretrain"], len(train)) - len(union))
    pretrain = union + rest[np.sort(rng.choice(len(rest), extra, replace=False))].tolist()
    return {
        "test": test.tolist(),
        "labelled": labelled,
        "pretrain": pretrain,
        "n_train": len(train),
    }


def _development_ids(task: str, data: Path, split: dict, n: int, seed: int = 2024) -> list:
    """Training ids that are neither labelled nor pretrained on: a split for method studies.

    ``benchmarks/finetune_study.py`` scores its variants on these, so that no
    choice of the method is ever made on the test set.
    """
    train, _ = _train_test_ids(task, data, np.random.default_rng(0))
    used = set(split["pretrain"]) | {i for ids in split["labelled"].values() for i in ids}
    candidates = np.array(sorted(set(train) - used))
    return sorted(candidates[np.random.default_rng(seed).choice(len(candidates), n, False)])


def _load_task(task: str, data: Path, split: dict, cache: Path, n_jobs: int):
    """Structures (Series by id) and targets of every id the benchmark uses."""
    from skdim.datasets import load_structures_csv

    path = cache / f"{task}_structures.pkl.gz"
    if path.exists():
        return pd.read_pickle(path)
    needed = sorted(set(split["pretrain"]) | set(split["test"]))
    name, id_col = (
        ("matbench_mp_gap.csv.gz", "matbench_id") if task == "gap" else ("mp36k.csv.gz", "mp_id")
    )
    structures, targets = load_structures_csv(
        data / name,
        target=TASKS[task]["target"],
        id_col=id_col,
        ids=needed,
        n_jobs=n_jobs,
        progress=True,
    )
    frame = pd.DataFrame({"structure": structures, "y": targets})
    frame.to_pickle(path)
    return frame


def _featurized(task: str, frame: pd.DataFrame, cache: Path, n_jobs: int) -> dict:
    """SiteNetInputs by id (cached), and the seconds it took."""
    from skdim.datasets import load_featurized, save_featurized
    from skdim.featurize import featurize

    path = cache / f"{task}_sitenet.npz"
    if path.exists():
        inputs, meta = load_featurized(path)
        return dict(zip(meta["ids"], inputs)), meta["seconds"]
    start = time.perf_counter()
    inputs = featurize(
        frame["structure"], max_atoms=50, n_jobs=n_jobs, progress=True, on_error="skip"
    )
    seconds = time.perf_counter() - start
    keep = [i for i, x in enumerate(inputs) if x is not None]
    ids = [frame.index[i] for i in keep]
    save_featurized(path, [inputs[i] for i in keep], ids=ids, seconds=seconds)
    return dict(zip(ids, [inputs[i] for i in keep])), seconds


def _matminer_features(task, name, frame, ids, cache, n_jobs) -> pd.DataFrame:
    """One matminer baseline's features for ``ids`` (cached in chunks, resumable)."""
    from joblib import Parallel, delayed

    path = cache / f"{task}_{name}.pkl"
    done = pd.read_pickle(path) if path.exists() else pd.DataFrame()
    todo = [i for i in ids if i not in done.index]
    for start in range(0, len(todo), 200):
        chunk = todo[start : start + 200]
        parts = np.array_split(np.array(chunk, dtype=object), max(1, n_jobs))
        rows = Parallel(n_jobs=n_jobs)(
            delayed(_matminer_rows)(name, [frame.at[i, "structure"] for i in part])
            for part in parts
        )
        block = pd.DataFrame(np.vstack([r for r in rows if len(r)]), index=chunk)
        done = pd.concat([done, block])
        done.to_pickle(path)
        print(f"  {task} {name}: {len(done)}/{len(ids)} structures", flush=True)
    return done.loc[ids]


def _matminer_rows(name: str, structures: list) -> np.ndarray:
    import warnings

    from matminer.featurizers.composition import ElementProperty
    from matminer.featurizers.structure import (
        OrbitalFieldMatrix,
        SiteStatsFingerprint,
        XRDPowderPattern,
    )

    warnings.filterwarnings("ignore")
    if name == "xrd":
        featurizers = [XRDPowderPattern()]
    elif name == "ofm":
        featurizers = [OrbitalFieldMatrix(period_tag=True)]
    else:
        featurizers = [
            ElementProperty.from_preset("magpie"),
            SiteStatsFingerprint.from_preset("CrystalNNFingerprint_ops"),
        ]
    rows = []
    for s in structures:
        row = []
        for f in featurizers:
            target = s.composition if isinstance(f, ElementProperty) else s
            try:
                row += list(f.featurize(target))
            except Exception:  # a featurizer failing on one structure gives NaNs
                row += [np.nan] * len(f.feature_labels())
        rows.append(row)
    return np.array(rows, dtype=float)


# ------------------------------------------------------------------ models
def _downstream(model: str, rf_trees: int, seed: int):
    """A fresh downstream model (``rf``, ``mlp``, ``ridge`` or ``knn``) for features."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    # Standardized features are clipped to +-5: a feature that is (almost)
    # constant in a small labelled subset would otherwise explode on test data.
    prep = [
        SimpleImputer(),
        StandardScaler(),
        FunctionTransformer(np.clip, kw_args={"a_min": -5, "a_max": 5}),
    ]
    if model == "rf":
        return make_pipeline(
            SimpleImputer(), RandomForestRegressor(rf_trees, random_state=seed, n_jobs=2)
        )
    if model == "mlp":
        mlp = MLPRegressor(
            hidden_layer_sizes=(64,), max_iter=2000, random_state=seed, early_stopping=False
        )
        return make_pipeline(*prep, mlp)
    if model == "ridge":
        return make_pipeline(*prep, RidgeCV(alphas=np.logspace(-3, 3, 13)))
    knn = GridSearchCV(
        KNeighborsRegressor(),
        {"n_neighbors": [1, 3, 5, 10], "weights": ["distance"]},
        cv=5,
        scoring="neg_mean_absolute_error",
    )
    return make_pipeline(*prep, knn)


def _finetune_epochs(n: int, steps: int) -> int:
    """A fixed budget of about ``steps`` optimizer steps (about 40 crystals a step)."""
    return int(np.clip(steps * 40 / n, 10, 1000))


# --------------------------------------------------------------------- run
def _pretrained(
    task: str, inputs: dict, split: dict, epochs: int, cache, suffix=""
) -> tuple[Path, dict]:
    """Directory of the DIM model pretrained on the split's pretraining structures, and its cost.

    Pretrains (without labels, engineered negatives off for CPU cost) unless
    ``<task>_dim<suffix>`` is cached; the cost (seconds, structures, epochs)
    is kept in ``<task>_pretrain<suffix>.json``.
    """
    from skdim import DIMPretrainer

    model_dir = cache / f"{task}_dim{suffix}"
    cost_path = cache / f"{task}_pretrain{suffix}.json"
    if not (model_dir / "config.json").exists():
        pretrain = [inputs[i] for i in split["pretrain"] if i in inputs]
        start = time.perf_counter()
        DIMPretrainer(
            max_epochs=epochs,
            engineered_negatives=False,
            random_state=0,
            verbose=1,
            checkpoint_dir=str(cache / f"{task}_dim{suffix}_checkpoints"),
        ).fit(pretrain).save(model_dir)
        seconds = time.perf_counter() - start
        cost_path.write_text(
            json.dumps({"seconds": seconds, "structures": len(pretrain), "epochs": epochs})
        )
    return model_dir, json.loads(cost_path.read_text())


def _report_stem(profile: str) -> str:
    """File stem of a profile's outputs: ``label_masking`` (full), ``label_masking_quick``."""
    return "label_masking" if profile == "full" else f"label_masking_{profile}"


def _run_task(task: str, args, profile: dict, out: Path) -> None:
    """Pretrain (or load) DIM, build every arm's features and append the rows."""
    from skdim import DIMPretrainer, SiteNetRegressor

    cache = Path(args.cache_dir) / args.profile
    cache.mkdir(parents=True, exist_ok=True)
    data = Path(args.data_dir)
    split_path = cache / f"{task}_split.json"
    if not split_path.exists():
        split_path.write_text(json.dumps(_task_split(task, data, profile)))
    split = json.loads(split_path.read_text())
    frame = _load_task(task, data, split, cache, args.n_jobs)
    inputs, featurize_seconds = _featurized(task, frame, cache, args.n_jobs)
    test = [i for i in split["test"] if i in inputs]
    y_test = frame.loc[test, "y"].to_numpy()
    costs = {"task": task, "featurize_s": featurize_seconds, "n_featurized": len(inputs)}

    model_dir, cost = _pretrained(task, inputs, split, profile["pretrain_epochs"], cache)
    costs.update(cost)
    encoders = {"dim": model_dir}
    if profile["long_pretrain_epochs"]:
        long = profile["long_pretrain_epochs"]
        encoders["dim_long"], cost = _pretrained(task, inputs, split, long, cache, "_long")
        costs.update({f"long_{key}": value for key, value in cost.items()})
    pd.Series(costs).to_json(out / f"cost_{task}_{args.profile}.json")

    pretrained = {name: DIMPretrainer.load(path) for name, path in encoders.items()}
    labelled_ids = sorted({i for ids in split["labelled"].values() for i in ids if i in inputs})
    every = labelled_ids + test
    every_inputs = [inputs[i] for i in every]
    # an untrained encoder: one epoch at learning rate 0 leaves the initial weights
    random_encoder = DIMPretrainer(
        max_epochs=1, lr=0.0, lr_schedule="constant", random_state=0, verbose=0
    ).fit(every_inputs[:50])
    features = {
        name: pd.DataFrame(model.transform(every_inputs), index=every)
        for name, model in pretrained.items()
    }
    features["random"] = pd.DataFrame(random_encoder.transform(every_inputs), index=every)
    for name in args.baselines:
        features[name] = _matminer_features(task, name, frame, every, cache, args.n_jobs)

    rows_path = out / f"{_report_stem(args.profile)}.csv"
    done = (
        pd.read_csv(rows_path)
        if rows_path.exists()
        else pd.DataFrame(columns=["task", "n", "seed", "arm"])
    )
    finished = set(zip(done["task"], done["n"], done["seed"], done["arm"]))
    for seed_key, ids in split["labelled"].items():
        seed = int(seed_key)
        ids = [i for i in ids if i in inputs]
        for n in profile["ns"]:
            subset = ids[:n]
            y = frame.loc[subset, "y"].to_numpy()
            jobs = {"mean": None}
            jobs.update({f"{f}_{m}": (f, m) for f in features for m in MODELS})
            jobs.update({"sitenet_scratch": None})
            jobs.update({f"sitenet_{name}": name for name in encoders})
            for arm, spec in jobs.items():
                if (task, n, seed, arm) in finished:
                    continue
                start = time.perf_counter()
                if arm == "mean":
                    prediction = np.full(len(test), y.mean())
                elif arm.startswith("sitenet"):
                    model = SiteNetRegressor(
                        pretrained=encoders.get(spec),
                        max_epochs=_finetune_epochs(n, profile["finetune_steps"]),
                        random_state=seed,
                        verbose=0,
                    )
                    model.fit([inputs[i] for i in subset], y)
                    prediction = model.predict([inputs[i] for i in test])
                else:
                    table = features[spec[0]]
                    model = _downstream(spec[1], profile["rf_trees"], seed)
                    model.fit(table.loc[subset].to_numpy(), y)
                    prediction = model.predict(table.loc[test].to_numpy())
                row = {
                    "task": task,
                    "n": n,
                    "seed": seed,
                    "arm": arm,
                    "mae": float(np.abs(prediction - y_test).mean()),
                    "fit_s": round(time.perf_counter() - start, 2),
                }
                pd.DataFrame([row]).to_csv(
                    rows_path, mode="a", header=not rows_path.exists(), index=False
                )
                print(row, flush=True)
    if args.plots:
        _embedding_plot(
            task,
            pretrained["dim"],
            [inputs[i] for i in test],
            y_test,
            out / f"tsne_{task}_{args.profile}.png",
        )


# ------------------------------------------------------------------ report
def _summarize(args, out: Path) -> None:
    """Write the Markdown table (median and IQR over seeds) and the plots."""
    stem = _report_stem(args.profile)
    rows = pd.read_csv(out / f"{stem}.csv")
    stats = rows.groupby(["task", "n", "arm"])["mae"].describe(percentiles=[0.25, 0.5, 0.75])
    lines = [
        f"# Label-masking benchmark ({args.profile} profile)",
        "",
        f"Command: `skdim benchmark --profile {args.profile}` "
        f"(or `python benchmarks/label_masking.py --profile {args.profile}`)  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}  ",
        "Test MAE: median [25th-75th percentile] over seeds; bold: best median per row.",
        "",
    ]
    for task in rows["task"].unique():
        table = stats.loc[task]
        ns = sorted(table.index.get_level_values(0).unique())
        arms = sorted(table.index.get_level_values(1).unique(), key=_arm_order)
        lines += [
            f"## {task}: {TASKS[task]['label']}",
            "",
            "| arm | " + " | ".join(f"N={n}" for n in ns) + " |",
            "|---|" + "---:|" * len(ns),
        ]
        best = {n: table.loc[n]["50%"].min() for n in ns}
        for arm in arms:
            cells = []
            for n in ns:
                if (n, arm) not in table.index:
                    cells.append("")
                    continue
                r = table.loc[(n, arm)]
                text = f"{r['50%']:.3f} [{r['25%']:.3f}-{r['75%']:.3f}]"
                cells.append(f"**{text}**" if r["50%"] == best[n] else text)
            lines.append(f"| {arm} | " + " | ".join(cells) + " |")
        lines += ["", _relative_gains(table, ns), "", *_family_table(table, ns), ""]
        cost = out / f"cost_{task}_{args.profile}.json"
        if cost.exists():
            c = json.loads(cost.read_text())
            lines += [
                f"Cost ({task}): featurized {c['n_featurized']} structures in "
                f"{c['featurize_s']:.0f} s; DIM pretraining on {c['structures']} structures, "
                f"{c['epochs']} epochs: {c['seconds']:.0f} s "
                f"({c['structures'] * c['epochs'] / c['seconds']:.0f} structures/s).",
                "",
            ]
            if "long_seconds" in c:
                lines[-1:] = [
                    f"The 3x longer pretraining (`*_long` arms): {c['long_epochs']} epochs, "
                    f"{c['long_seconds']:.0f} s "
                    f"({c['long_structures'] * c['long_epochs'] / c['long_seconds']:.0f}"
                    " structures/s).",
                    "",
                ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.plots:
        _curve_plot(rows, out / f"{stem}.png")


FAMILIES = {
    "sitenet_dim": "Site-Net fine-tuned from DIM",
    "sitenet_dim_long": "Site-Net fine-tuned from DIM pretrained 3x longer",
    "sitenet_scratch": "Site-Net from scratch",
    "dim": "DIM embeddings",
    "dim_long": "DIM embeddings, pretrained 3x longer",
    "random": "random-encoder embeddings",
    "xrd": "XRD powder pattern",
    "ofm": "orbital field matrix",
    "magpie_ssf": "Magpie + SiteStatsFingerprint",
    "mean": "mean predictor",
}


def _family_table(table, ns) -> list[str]:
    """Markdown rows: the best downstream model of each family, per N."""
    lines = [
        "Best downstream model of each family (median test MAE; model in brackets, the"
        " family's best on the test medians, for display: every arm is in the table above):",
        "",
        "| family | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|" + "---:|" * len(ns),
    ]
    for family, label in FAMILIES.items():
        cells = []
        for n in ns:
            medians = table.loc[n]["50%"]
            arms = [a for a in medians.index if _arm_order(a)[0] == _arm_order(family)[0]]
            if not arms:
                cells.append("")
                continue
            best = medians[arms].idxmin()
            model = best[len(family) + 1 :]
            cells.append(f"{medians[best]:.3f}" + (f" ({model})" if model else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _arm_order(arm: str) -> tuple:
    groups = [
        "sitenet_dim",
        "sitenet_dim_long",
        "sitenet_scratch",
        "dim",
        "dim_long",
        "random",
        *MATMINER,
        "mean",
    ]
    for k, g in reversed(list(enumerate(groups))):  # "dim_long_rf" before "dim_*"
        if arm == g or arm.startswith(g + "_"):
            return (k, arm)
    return (len(groups), arm)


def _relative_gains(table, ns) -> str:
    """How the DIM arms compare with the best non-DIM arm, per N."""
    parts = []
    for n in ns:
        medians = table.loc[n]["50%"]
        is_dim = [a.startswith(("sitenet_dim", "dim_")) for a in medians.index]
        dim_best = medians[is_dim].min()
        others = medians[[not d for d in is_dim]]
        parts.append(
            f"N={n}: best DIM arm {dim_best:.3f} vs best other {others.min():.3f} "
            f"({others.idxmin()}), {100 * (others.min() - dim_best) / others.min():+.1f}%"
        )
    return "Best DIM arm against the best other arm (positive: DIM better): " + "; ".join(parts)


def _curve_plot(rows: pd.DataFrame, path: Path) -> None:
    """Test MAE against N per arm, with interquartile bands, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 5), squeeze=False)
    shown = [
        "sitenet_dim",
        "sitenet_dim_long",
        "sitenet_scratch",
        "dim_rf",
        "random_rf",
        "xrd_rf",
        "ofm_rf",
        "magpie_ssf_rf",
        "mean",
    ]
    for ax, task in zip(axes[0], tasks):
        sub = rows[rows["task"] == task]
        for arm in shown:
            part = sub[sub["arm"] == arm].groupby("n")["mae"]
            if part.ngroups == 0:
                continue
            q = part.quantile([0.25, 0.5, 0.75]).unstack()
            (line,) = ax.plot(q.index, q[0.5], marker="o", label=arm)
            ax.fill_between(q.index, q[0.25], q[0.75], color=line.get_color(), alpha=0.15)
        ax.set(
            xscale="log",
            xlabel="labelled structures N",
            ylabel=f"test MAE, {TASKS[task]['label']}",
            title=task,
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _embedding_plot(task, dim, inputs, y, path: Path) -> None:
    """t-SNE of the DIM embeddings of the test set, coloured by the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    points = TSNE(perplexity=30, init="pca", random_state=0).fit_transform(dim.transform(inputs))
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=y, s=6, cmap="viridis")
    fig.colorbar(scatter, label=TASKS[task]["label"])
    ax.set(title=f"t-SNE of DIM embeddings, {task} test set", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's command-line options."""
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="quick: a smoke run (about 10 min on 2 cores); full: the reported results",
    )
    parser.add_argument(
        "--quick", dest="profile", action="store_const", const="quick", help="--profile quick"
    )
    parser.add_argument(
        "--full", dest="profile", action="store_const", const="full", help="--profile full"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=sorted(TASKS),
        default=["gap", "eform"],
        help="gap: matbench band gap; eform: mp36k formation energy",
    )
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=MATMINER,
        default=list(MATMINER),
        help="matminer featurizations to compare with",
    )
    parser.add_argument("--data-dir", default=None, help="data folder (default: $SKDIM_DATA)")
    parser.add_argument(
        "--cache-dir", default="benchmarks/cache", help="finished runs, to resume from"
    )
    parser.add_argument("--out-dir", default="benchmarks/results", help="report and plots")
    parser.add_argument("--n-jobs", type=int, default=2, help="processes for featurizing")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no figures")


def run(args: argparse.Namespace) -> None:
    """Run the profile's tasks (resuming from the cache) and write the report."""
    from skdim.datasets import get_data_home

    args.data_dir = str(get_data_home(args.data_dir))
    profile = PROFILES[args.profile]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for task in args.tasks:
        _run_task(task, args, profile, out)
    _summarize(args, out)
    print(f"wall time this run: {time.perf_counter() - start:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python benchmarks/label_masking.py`` (and of ``skdim benchmark``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
