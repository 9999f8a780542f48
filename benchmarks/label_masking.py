"""Label-masking benchmark: with 50-1000 labels, what should I use?

Two tasks (``_masking_split``): ``gap``, matbench ``mp_gap`` (PBE band gap,
eV), official fold 0; ``eform``, ``mp36k`` (formation energy, eV/atom), seeded
80/20 split. For each of several seeds a block of training structures is
labelled (disjoint across seeds), its prefixes are the nested subsets
N = 50 in 100 in 250 in 1000, and every arm gets exactly the same subsets and
the same test set (``_masking_arms`` names them):

1. ``sitenet_scratch``: SiteNetRegressor from random weights, default recipe
   (on band gap with the transparent-ReLU output: gaps are >= 0);
2. ``sitenet_dim``: fine-tuned from the task's protocol DIM model, pretrained
   on that task's training fold only, without labels (plateau schedule, capped);
3. ``sitenet_shipped``: fine-tuned from the shipped encoder (``--shipped``);
4. ``sitenet_transfer``: fine-tuned from a Site-Net trained on the *other*
   task's labels (``benchmarks/transfer_source.py``; test structures left out);
5. ``<family>_<model>``: random forest, MLP, ridge and kNN on a feature table:
   ``dim`` (protocol DIM embeddings), ``shipped`` (shipped-encoder embeddings),
   ``shipped_magpie`` (those + Magpie composition features), ``chgnet`` (CHGNet
   crystal features, ``benchmarks/chgnet_features.py``; possibly leaking on
   formation energy), ``random`` (an untrained encoder), ``input_stats``
   (the encoder's input site features pooled by mean, standard deviation,
   minimum and maximum: no network), ``xrd``, ``ofm``, ``magpie_ssf``
   (matminer);
6. ``mean``: the mean of the labelled targets.

Model selection uses only the labelled subset: the library's default
Site-Net recipe, internal CV for the ridge penalty and the kNN k, sklearn
defaults otherwise. The report (``_masking_report``) gives medians and
interquartile ranges, the best DIM arm against the best non-DIM arm with a
paired Wilcoxon test, the goal's verdict, and every arm's cost. Everything is
cached under ``--cache-dir/<profile>_v<protocol>``, and finished rows are kept
in the rows file (``_masking_rows``), so an interrupted run resumes where it
stopped; two processes (``--tasks gap`` and ``--tasks eform``) can share it.

    python benchmarks/label_masking.py --quick   # the CI smoke run
    python benchmarks/label_masking.py --full    # about 18 core-hours (measured); resumable
    python benchmarks/label_masking.py --full --report  # rewrite report and plot from the rows

This is a research script of the source repository, not part of the
installed library (``skdim benchmark`` runs it from a source checkout, and
the other studies in ``benchmarks/`` import their split from it). Paths
default to ``benchmarks/cache`` and ``benchmarks/results`` under the working
directory. DIM is pretrained without the engineered negatives here: on CPU
they cost 2.2x the time per epoch and, in our ablation on the demo set, gave
no better embeddings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # the helper modules, also when skdim's CLI loads this file
    sys.path.insert(0, _HERE)

from _masking_arms import MODELS, downstream
from _masking_encoders import (
    protocol_dim,
    shipped_encoder,
    transfer_encoder,
    untrained_encoder,
)
from _masking_features import (
    chgnet_table,
    input_stats,
    load_task,
    matminer_features,
    sitenet_inputs,
)
from _masking_plots import embedding_plot
from _masking_report import summarize
from _masking_rows import PROTOCOL, append_row, finished, report_stem
from _masking_split import TASKS, _development_ids, _task_split, _train_test_ids

__all__ = ["PROFILES", "TASKS", "add_arguments", "main", "run"]

PROFILES = {
    "quick": {
        "n_test": 200,
        "ns": [50],
        "seeds": 3,
        # unlabelled training structures for DIM, the labelled pool included
        "n_pretrain": 800,
        "pretrain_max_epochs": 3,
        # Site-Net budget: None is the library's default recipe
        "max_steps": 30,
        "rf_trees": 100,
        "transfer_structures": 300,
        "transfer_max_steps": 20,
    },
    "full": {
        "n_test": 2000,
        "ns": [50, 100, 250, 1000],
        "seeds": 5,
        "n_pretrain": 10000,
        "pretrain_max_epochs": 30,
        "max_steps": None,
        "rf_trees": 300,
        "transfer_structures": 20000,
        "transfer_max_steps": None,
        # not used by this benchmark any more: benchmarks/finetune_study.py reads it
        # (its dim_long variants, pretrained 18 epochs, as the former *_long arms)
        "long_pretrain_epochs": 18,
    },
}
#: the baseline feature families, cheapest to make first (on one core: XRD and
#: CHGNet take seconds to minutes per 1,000 structures, SiteStatsFingerprint
#: about 7 minutes, OFM about 19)
FEATURE_BASELINES = ("xrd", "chgnet", "magpie_ssf", "ofm")

# the names the other studies import from this script
_downstream = downstream
_pretrained = protocol_dim
_report_stem = report_stem
_summarize = summarize
__all__ += ["_development_ids", "_task_split", "_train_test_ids"]


def _finetune_epochs(n: int, steps: int) -> int:
    """The former fixed budget, about ``steps`` optimizer steps (about 40 crystals a step).

    The benchmark now trains Site-Net with the library's default recipe; this
    stays for ``benchmarks/recipe_study.py`` and ``finetune_study.py``.
    """
    return int(np.clip(steps * 40 / n, 10, 1000))


def _timed_transform(model, inputs: list, ids: list) -> tuple[pd.DataFrame, dict]:
    start = time.perf_counter()
    table = pd.DataFrame(model.transform(inputs), index=ids)
    return table, {"seconds": time.perf_counter() - start, "structures": len(ids)}


def _encoder_tables(task, args, frame, inputs, every, encoders, cost) -> dict:
    """The feature tables made from Site-Net's inputs and encoders, for the ids ``every``.

    Quick to make (one pass of each encoder); costs go into ``cost``.
    """
    from skdim import DIMPretrainer

    every_inputs = [inputs[i] for i in every]
    tables = {}
    tables["dim"], cost["features"]["dim"] = _timed_transform(
        DIMPretrainer.load(encoders["dim"]), every_inputs, every
    )
    if "shipped" in encoders:
        tables["shipped"], cost["features"]["shipped"] = _timed_transform(
            DIMPretrainer.load(encoders["shipped"]), every_inputs, every
        )
        magpie, cost["features"]["magpie"] = matminer_features(
            task, "magpie", frame, every, args.cache, args.n_jobs
        )
        tables["shipped_magpie"] = pd.concat(
            [tables["shipped"].add_prefix("shipped_"), magpie.add_prefix("magpie_")], axis=1
        )
    tables["random"], cost["features"]["random"] = _timed_transform(
        untrained_encoder(every_inputs), every_inputs, every
    )
    start = time.perf_counter()
    tables["input_stats"] = pd.DataFrame(input_stats(every_inputs), index=every)
    cost["features"]["input_stats"] = {
        "seconds": time.perf_counter() - start,
        "structures": len(every),
    }
    return tables


def _baseline_table(task, args, frame, every, cost, name) -> dict:
    """The feature table ``name`` (matminer's or CHGNet's) for the ids ``every``.

    Slow to make (OFM and SiteStatsFingerprint take about a second per
    structure on one core), cached in chunks; its cost goes into ``cost``.
    Returns ``{name: table}``, or an empty dict when the table cannot be made
    here (CHGNet not installed).
    """
    if name == "chgnet":
        table, table_cost = chgnet_table(task, frame, every, args.cache)
        if table is None:
            print(table_cost["skipped"], flush=True)
            cost["skipped"].append(table_cost["skipped"])
            return {}
    else:
        table, table_cost = matminer_features(task, name, frame, every, args.cache, args.n_jobs)
    cost["features"][name] = table_cost
    return {name: table}


def _encoders(task, args, profile, inputs, split, data, cost) -> dict:
    """Folders of the encoders the Site-Net arms start from; costs go into ``cost``."""
    encoders = {}
    encoders["dim"], cost["pretraining"]["dim"] = protocol_dim(
        task, inputs, split, profile["pretrain_max_epochs"], args.cache
    )
    folder, info = shipped_encoder(args.shipped)
    if folder is None:
        print(info["skipped"], flush=True)
        cost["skipped"].append(info["skipped"])
    else:
        encoders["shipped"], cost["pretraining"]["shipped"] = folder, info
    if args.transfer:
        folder, info = transfer_encoder(
            task,
            data,
            args.cache,
            split["test"],
            max_structures=profile["transfer_structures"],
            max_steps=profile["transfer_max_steps"],
            n_jobs=args.n_jobs,
        )
        if folder is None:
            print(info["skipped"], flush=True)
            cost["skipped"].append(info["skipped"])
        else:
            encoders["transfer"], cost["pretraining"]["transfer"] = folder, info
    return encoders


def _run_task(task: str, args, profile: dict, out: Path) -> None:
    """Build every arm's inputs and append one row per unfinished (N, seed, arm).

    The Site-Net arms and the encoders' tables run first; the slow matminer
    and CHGNet tables are made after them, cheapest first, each followed by
    its rows, so a run that stops early has the Site-Net rows and those of
    every table finished.
    """
    from skdim import DIMPretrainer

    args.cache = Path(args.cache_dir) / f"{args.profile}_v{PROTOCOL}"
    args.cache.mkdir(parents=True, exist_ok=True)
    data = Path(args.data_dir)
    split_path = args.cache / f"{task}_split.json"
    if not split_path.exists():
        split_path.write_text(json.dumps(_task_split(task, data, profile)))
    split = json.loads(split_path.read_text())
    frame = load_task(task, data, split, args.cache, args.n_jobs)
    inputs, featurize_seconds = sitenet_inputs(task, frame, args.cache, args.n_jobs)
    test = [i for i in split["test"] if i in inputs]
    if len(test) < len(split["test"]):
        print(f"{len(split['test']) - len(test)} test structures failed to featurize", flush=True)
    cost = {
        "task": task,
        "protocol": PROTOCOL,
        "n_test": len(test),
        "features": {"sitenet": {"seconds": featurize_seconds, "structures": len(inputs)}},
        "pretraining": {},
        "skipped": [],
    }
    cost_path = out / f"cost_{task}_{args.profile}.json"
    encoders = _encoders(task, args, profile, inputs, split, data, cost)
    labelled = sorted({i for ids in split["labelled"].values() for i in ids if i in inputs})
    every = labelled + test
    tables = _encoder_tables(task, args, frame, inputs, every, encoders, cost)
    _write_cost(cost_path, cost)
    starts = {"scratch": None, **encoders}
    rows_path = out / f"{report_stem(args.profile)}.csv"
    _append_rows(task, profile, args, split, frame, inputs, test, tables, starts, rows_path)
    for name in args.baselines:
        # each table's rows as soon as it is made (finished rows are skipped), so a
        # run stopped during a slow table keeps the rows of the tables before it
        tables.update(_baseline_table(task, args, frame, every, cost, name))
        _write_cost(cost_path, cost)
        _append_rows(task, profile, args, split, frame, inputs, test, tables, starts, rows_path)
    if args.plots:
        embedding_plot(
            task,
            DIMPretrainer.load(encoders["dim"]),
            [inputs[i] for i in test],
            frame.loc[test, "y"].to_numpy(),
            out / f"tsne_{task}_{args.profile}.png",
        )


def _write_cost(path: Path, cost: dict) -> None:
    """Write a task's costs, keeping those of arms an earlier run measured and this one did not.

    A run restricted to some tables (``--baselines``, ``--no-transfer``) then
    leaves the other families' featurization and pretraining costs in place.
    Costs written under another protocol are replaced, not kept.
    """
    earlier = json.loads(path.read_text()) if path.exists() else {}
    merged = dict(cost)
    if earlier.get("protocol") == cost["protocol"]:
        for key in ("features", "pretraining"):
            merged[key] = {**earlier.get(key, {}), **cost[key]}
    path.write_text(json.dumps(merged, indent=1, default=str))


def _append_rows(task, profile, args, split, frame, inputs, test, tables, starts, rows_path):
    """Fit and score every unfinished (N, seed, arm) of ``tables`` and ``starts``; append rows.

    Arms are the mean, every feature table with every downstream model, and
    Site-Net from every start (``None``: from scratch). Every seed at small N
    comes first: the goal's cells come first. Within an N, the table arms
    (seconds each) run seed by seed, then each Site-Net arm (minutes each)
    for every seed in turn, from scratch first, so that a run stopped part
    way through an N has complete arms rather than complete seeds.
    """
    done = finished(rows_path)
    test_inputs = [inputs[i] for i in test]
    y_test = frame.loc[test, "y"].to_numpy()
    table_arms = {"mean": None}
    table_arms.update({f"{f}_{m}": (f, m) for f in tables for m in MODELS})
    sitenet_arms = {f"sitenet_{name}": start for name, start in starts.items()}
    for n in profile["ns"]:
        seeds = {
            int(seed_key): [i for i in ids if i in inputs][:n]
            for seed_key, ids in split["labelled"].items()
        }
        order = [(arm, spec, seed) for seed in seeds for arm, spec in table_arms.items()]
        order += [(arm, spec, seed) for arm, spec in sitenet_arms.items() for seed in seeds]
        for arm, spec, seed in order:
            if (task, n, seed, arm) in done:
                continue
            subset = seeds[seed]
            y = frame.loc[subset, "y"].to_numpy()
            start = time.perf_counter()
            model = _fit_arm(task, profile, args, arm, spec, seed, inputs, tables, subset, y)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            if model is None:
                prediction = np.full(len(test), y.mean())
            elif arm.startswith("sitenet_"):
                prediction = model.predict(test_inputs)
            else:
                prediction = model.predict(tables[spec[0]].loc[test].to_numpy())
            row = {
                "task": task,
                "n": n,
                "seed": seed,
                "arm": arm,
                "mae": float(np.abs(np.ravel(prediction) - y_test).mean()),
                "fit_s": round(fit_s, 3),
                "predict_s": round(time.perf_counter() - start, 3),
            }
            append_row(rows_path, row)
            print(row, flush=True)


def _fit_arm(task, profile, args, arm, spec, seed, inputs, tables, subset, y):
    """The fitted model of one arm on one labelled subset (``None`` for the mean)."""
    from skdim import SiteNetRegressor

    if arm == "mean":
        return None
    if arm.startswith("sitenet_"):
        budget = {} if profile["max_steps"] is None else {"max_steps": profile["max_steps"]}
        return SiteNetRegressor(
            pretrained=None if spec is None else str(spec),
            output=TASKS[task]["sitenet_output"],
            random_state=seed,
            verbose=0,
            **budget,
        ).fit([inputs[i] for i in subset], y)
    model = downstream(spec[1], profile["rf_trees"], seed, args.n_jobs)
    return model.fit(tables[spec[0]].loc[subset].to_numpy(), y)


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
        choices=FEATURE_BASELINES,
        default=list(FEATURE_BASELINES),
        help="feature families to compare with (matminer's, and CHGNet's where installed)",
    )
    parser.add_argument(
        "--shipped",
        metavar="NAME_OR_DIR",
        default=None,
        help="the shipped encoder: a name of skdim.list_pretrained() or a saved DIMPretrainer "
        "folder; 'none' skips its arms (default: the first shipped name, if any)",
    )
    parser.add_argument(
        "--no-transfer",
        dest="transfer",
        action="store_false",
        help="skip Site-Net fine-tuned from the other task's labels (and the training of "
        "that source model)",
    )
    parser.add_argument("--data-dir", default=None, help="data folder (default: $SKDIM_DATA)")
    parser.add_argument(
        "--cache-dir", default="benchmarks/cache", help="finished runs, to resume from"
    )
    parser.add_argument("--out-dir", default="benchmarks/results", help="report and plots")
    parser.add_argument(
        "--n-jobs", type=int, default=2, help="processes for featurizing and the forests"
    )
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="no figures")
    parser.add_argument(
        "--report",
        action="store_true",
        help="only rewrite the report and its plot from the rows file in --out-dir; "
        "nothing is run, no data are read",
    )


def run(args: argparse.Namespace) -> None:
    """Run the profile's tasks (resuming from the cache) and write the report.

    With ``args.report`` only the report and its plot are rewritten, from the
    rows and cost files already in ``args.out_dir``.
    """
    from skdim.datasets import get_data_home

    out = Path(args.out_dir)
    if getattr(args, "report", False):
        if not (out / f"{report_stem(args.profile)}.csv").exists():
            raise FileNotFoundError(f"no rows file {report_stem(args.profile)}.csv in {out}")
        summarize(args, out)
        return
    args.data_dir = str(get_data_home(args.data_dir))
    for name, default in (("shipped", None), ("transfer", True)):  # older callers' Namespaces
        if not hasattr(args, name):
            setattr(args, name, default)
    profile = PROFILES[args.profile]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for task in args.tasks:
        _run_task(task, args, profile, out)
    summarize(args, out)
    print(f"wall time this run: {time.perf_counter() - start:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python benchmarks/label_masking.py`` (and of ``skdim benchmark``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
