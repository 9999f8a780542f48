"""The label-masking benchmark's costs: the cost table of each task and its compute line.

Featurization in seconds per 1,000 structures, pretraining seconds (the
task's own DIM model's measured run; the shipped encoder's model-card wall
time, amortised; the transfer source's), fit and predict seconds per arm and
N, and the measured compute of a task in core-hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _masking_arms import arm_family, arm_order, shown
from _masking_split import task_name


def _rate(cost: dict | None) -> float:
    """Seconds per 1,000 structures of a featurization cost, or NaN."""
    if not cost or not cost.get("structures"):
        return float("nan")
    return 1000 * cost["seconds"] / cost["structures"]


def _featurization(family: str, features: dict) -> str:
    """Seconds per 1,000 structures to compute an arm family's inputs, as a table cell."""
    parts = {
        "sitenet_dim": ["sitenet"],
        "sitenet_shipped": ["sitenet"],
        "sitenet_transfer": ["sitenet"],
        "sitenet_scratch": ["sitenet"],
        "dim": ["sitenet", "dim"],
        "shipped": ["sitenet", "shipped"],
        "random": ["sitenet", "random"],
        "shipped_magpie": ["sitenet", "shipped", "magpie"],
        "mean": [],
    }.get(family, [family])
    seconds = sum(_rate(features.get(part)) for part in parts)
    if np.isnan(seconds):
        return "n/a"
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def _pretraining(family: str, pretraining: dict) -> str:
    """An arm family's pretraining cost, as a table cell."""
    source = {
        "sitenet_dim": "dim",
        "dim": "dim",
        "sitenet_shipped": "shipped",
        "shipped": "shipped",
        "shipped_magpie": "shipped",
        "sitenet_transfer": "transfer",
    }.get(family)
    if source is not None and source not in pretraining:
        return "n/a"
    if source == "dim":
        return f"{pretraining['dim']['seconds']:.0f}"
    if source == "shipped":
        wall = pretraining["shipped"].get("wall_time_s")
        return "unknown, amortised" if wall is None else f"{wall:.0f}, amortised"
    if source == "transfer":
        seconds = pretraining["transfer"].get("seconds")
        return f"{'unknown' if seconds is None else f'{seconds:.0f}'} (other task's labels)"
    if family == "chgnet":
        return "paid by CHGNet's authors"
    return "0"


def cost_lines(task_rows: pd.DataFrame, ns: list[int], cost: dict) -> list[str]:
    """Markdown of one task's cost table (per arm) and the notes on its costs."""
    features, pretraining = cost.get("features", {}), cost.get("pretraining", {})
    timing = task_rows.groupby(["arm", "n"])[["fit_s", "predict_s"]].median()
    lines = [
        "Cost per arm: featurization in seconds per 1,000 structures (inputs of the arm, "
        "embedding included); pretraining in seconds (the task's own DIM model, its measured "
        "run, paid per task; the shipped encoder's model-card wall time, paid once for every "
        "user and task: amortised); fit and predict seconds, median over seeds (predict: the "
        "whole test set).",
        "",
        "| arm | featurization (s/1k) | pretraining (s) | "
        + " | ".join(f"fit / predict (s), N={n}" for n in ns)
        + " |",
        "|---|---:|---:|" + "---:|" * len(ns),
    ]
    for arm in sorted(task_rows["arm"].unique(), key=arm_order):
        family = arm_family(arm)
        cells = []
        for n in ns:
            if (arm, n) not in timing.index:
                cells.append("")
                continue
            fit, predict = timing.loc[(arm, n)]
            cells.append(f"{fit:.2f} / {predict:.2f}")
        featurize = _featurization(family, features)
        lines.append(
            f"| {shown(arm)} | {featurize} | {_pretraining(family, pretraining)} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    if "dim" in pretraining:
        c = pretraining["dim"]
        end = "stopped on its plateau" if c["stopped"] else "hit the cap"
        lines.append(
            f"The task's own DIM model: {c['structures']} training-fold structures, "
            f"epochs: {c['epochs']} (cap {c['max_epochs']}; {end}), {c['seconds']:.0f} s."
        )
    if "shipped" in pretraining:
        s = pretraining["shipped"]
        facts = _facts(
            s,
            {
                "n_structures": "{} structures",
                "dataset": "{}",
                "fold": "fold {}",
                "epochs": "{} epochs",
            },
        )
        lines.append(f"Shipped encoder: `{s['name']}`" + (f" ({facts})." if facts else "."))
    if "transfer" in pretraining:
        t = pretraining["transfer"]
        facts = _facts(
            t,
            {
                "source_task": "trained on {} labels",
                "n_structures": "{} structures",
                "n_excluded": "{} left out as structures of this task's test set",
                "steps": "{} steps",
                "epochs": "{} epochs",
            },
        )
        seconds = "unknown" if t.get("seconds") is None else f"{t['seconds']:.0f} s"
        lines.append(
            f"Transfer source (Site-Net trained on the other task's labels): {seconds} ({facts})."
        )
    for note in cost.get("skipped", []):
        lines.append(f"Note: {note}.")
    lines.append(compute_line(task_rows, cost))
    return [*lines, ""]


def _facts(record: dict, templates: dict) -> str:
    """``record``'s values that ``templates`` names, each in its template, comma-joined."""
    values = {k: record[k] for k in templates if k in record}
    if "source_task" in values:
        values["source_task"] = task_name(values["source_task"])
    return ", ".join(templates[k].format(v) for k, v in values.items())


def compute_line(task_rows: pd.DataFrame, cost: dict) -> str:
    """One task's measured compute: featurization, pretraining, fits and predictions.

    The run may span several sessions and processes, so this sums measured
    seconds (one thread each) rather than giving one wall-clock span; the
    shipped encoder's pretraining is paid once for every user and not counted.
    """
    featurize = sum(c.get("seconds") or 0.0 for c in cost.get("features", {}).values())
    pretraining = cost.get("pretraining", {})
    pretrain = sum((pretraining.get(k) or {}).get("seconds") or 0.0 for k in ("dim", "transfer"))
    fits = float(task_rows["fit_s"].sum() + task_rows["predict_s"].fillna(0).sum())
    total = featurize + pretrain + fits
    return (
        f"Compute of this task: {total / 3600:.1f} core-hours measured (featurization "
        f"{featurize / 3600:.1f} h, pretraining {pretrain / 3600:.1f} h, fits and predictions "
        f"{fits / 3600:.1f} h), one thread per process."
    )
