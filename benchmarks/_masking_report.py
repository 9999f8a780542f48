"""The label-masking benchmark's report: tables, the DIM-versus-rest test, the goal.

Arms and tasks are named as the README names them (:func:`_masking_arms.shown`:
``input_stats_rf`` is "forest on pooled input site features"). For each task
the Markdown report gives

* every arm's test MAE: median and interquartile range over the seeds;
* for each N, the best DIM arm against the best non-DIM arm (both chosen by
  their median test MAE): the per-seed paired differences, their median, the
  gain of the medians and an exact two-sided Wilcoxon signed-rank p-value;
  then whether the goal "a DIM arm at least 10 % better than every non-DIM
  arm at every N <= 250" is met, and by how much it is missed otherwise;
* the best model of each family;
* each arm's cost: featurization, pretraining, fit and predict seconds
  (:mod:`_masking_costs`).

The curve plot and the t-SNE maps are drawn by :mod:`_masking_plots`.

CHGNet arms are flagged in every table (:data:`_masking_arms.LEAK_MARK`):
CHGNet was trained on MPtrj, which holds Materials Project energies of these
very materials, so on formation energy it may have seen the test labels.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _masking_arms import (
    FAMILIES,
    LEAK_MARK,
    arm_family,
    arm_order,
    is_dim_arm,
    is_leaky_arm,
    shown,
)
from _masking_costs import cost_lines
from _masking_plots import curve_plot
from _masking_rows import PROTOCOL, read_rows, report_stem
from _masking_split import TASKS, task_name, task_title

#: the goal: a DIM arm this much better than every non-DIM arm ...
GOAL_GAIN = 0.10
#: ... at every N up to this.
GOAL_MAX_N = 250


def wilcoxon_p(differences: np.ndarray) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped).

    Parameters
    ----------
    differences : numpy.ndarray
        One difference per seed.

    Returns
    -------
    float
        NaN when no difference is non-zero. With k non-zero differences the
        smallest possible value is ``2 / 2**k``: 0.0625 for 5 seeds, 0.25 for 3.
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if len(d) == 0:
        return float("nan")
    return float(wilcoxon(d, method="exact").pvalue)


def paired_comparison(cell: pd.DataFrame, exclude_leaky: bool = False) -> dict | None:
    """The best DIM arm against the best non-DIM arm in one (task, N) cell.

    Parameters
    ----------
    cell : pandas.DataFrame
        Rows (``arm``, ``seed``, ``mae``) of one task and N.
    exclude_leaky : bool, default=False
        Leave the possibly leaking (CHGNet) arms out of the non-DIM arms.

    Returns
    -------
    dict or None
        ``dim`` and ``other`` (arm names), ``dim_median``, ``other_median``,
        ``seeds``, ``differences`` (per seed, non-DIM minus DIM: positive
        when DIM is better), ``median_difference``, ``gain`` (relative gain of
        the medians, positive when DIM is better) and ``p`` (Wilcoxon); None
        when either side has no arm.
    """
    medians = cell.groupby("arm")["mae"].median()
    dim = [a for a in medians.index if is_dim_arm(a)]
    other = [
        a for a in medians.index if not is_dim_arm(a) and not (exclude_leaky and is_leaky_arm(a))
    ]
    if not dim or not other:
        return None
    best_dim, best_other = medians[dim].idxmin(), medians[other].idxmin()
    a = cell[cell["arm"] == best_dim].groupby("seed")["mae"].mean()
    b = cell[cell["arm"] == best_other].groupby("seed")["mae"].mean()
    seeds = sorted(set(a.index) & set(b.index))
    differences = (b[seeds] - a[seeds]).to_numpy()
    return {
        "dim": best_dim,
        "other": best_other,
        "dim_median": float(medians[best_dim]),
        "other_median": float(medians[best_other]),
        "seeds": [int(s) for s in seeds],
        "differences": differences,
        "median_difference": float(np.median(differences)) if seeds else float("nan"),
        "gain": float((medians[best_other] - medians[best_dim]) / medians[best_other]),
        "p": wilcoxon_p(differences),
    }


def goal_verdict(comparisons: dict) -> str:
    """Whether the goal holds for one task, and by how much it is missed otherwise.

    Parameters
    ----------
    comparisons : dict
        N -> :func:`paired_comparison` (None allowed).

    Returns
    -------
    str
        ``met`` with the smallest gain, or ``missed`` with the shortfall at
        each N that misses; ``not assessed`` without any N <= 250.
    """
    cells = {n: c for n, c in comparisons.items() if n <= GOAL_MAX_N and c is not None}
    if not cells:
        return f"not assessed (no N <= {GOAL_MAX_N} with both DIM and non-DIM arms)"
    target = 100 * GOAL_GAIN
    misses = {n: c for n, c in cells.items() if c["gain"] < GOAL_GAIN}
    if not misses:
        worst = min(cells, key=lambda n: cells[n]["gain"])
        return (
            f"**met** (smallest gain {100 * cells[worst]['gain']:+.1f} % at N={worst}; "
            f"needed {target:.0f} %)"
        )
    parts = [
        f"N={n}: {100 * c['gain']:+.1f} % ({target - 100 * c['gain']:.1f} points short; "
        f"best non-DIM {shown(c['other'])})"
        for n, c in sorted(misses.items())
    ]
    worst = max(target - 100 * c["gain"] for c in misses.values())
    return f"**missed** by up to {worst:.1f} percentage points: " + "; ".join(parts)


def comparison_lines(task_rows: pd.DataFrame, ns: list[int]) -> tuple[list[str], dict]:
    """Markdown of the DIM-versus-rest section of one task, and its comparisons by N."""
    comparisons = {n: paired_comparison(task_rows[task_rows["n"] == n]) for n in ns}
    lines = [
        "Best DIM arm against the best non-DIM arm (CHGNet included), each chosen by its "
        "median test MAE; differences are per seed, non-DIM minus DIM (positive: DIM better); "
        "p: exact two-sided Wilcoxon signed-rank test of those differences.",
        "",
        "| N | best DIM arm | best non-DIM arm | per-seed differences | median difference "
        "| DIM better by (medians) | Wilcoxon p |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for n, c in comparisons.items():
        if c is None:
            lines.append(f"| {n} | | | | | | |")
            continue
        per_seed = ", ".join(f"{d:+.3f}" for d in c["differences"])
        lines.append(
            f"| {n} | {shown(c['dim'])} {c['dim_median']:.3f} "
            f"| {shown(c['other'])} {c['other_median']:.3f} | {per_seed} "
            f"| {c['median_difference']:+.3f} | {100 * c['gain']:+.1f} % | {c['p']:.4g} |"
        )
    k = max((len(c["seeds"]) for c in comparisons.values() if c), default=0)
    floor = f"{2 / 2**k:.4g}" if k else "n/a"
    floor_note = f"With {k} seeds the smallest exact two-sided p is 2/2^{k} = {floor}"
    if k != 5:
        floor_note += " (with 5 seeds it is 0.0625)"
    if k and 2 / 2**k > 0.05:
        floor_note += f": no result can reach p < 0.05, and p = {floor} means every seed agrees"
    lines += [
        "",
        f"{floor_note}. Both arms are chosen on the test medians, which flatters whichever "
        "side has more arms; read p as a consistency check, not as significance.",
        "",
        f"Goal, a DIM arm at least {100 * GOAL_GAIN:.0f} % better than every non-DIM arm at "
        f"every N <= {GOAL_MAX_N}: {goal_verdict(comparisons)}.",
    ]
    if any(c and is_leaky_arm(c["other"]) for c in comparisons.values()):
        clean = {
            n: paired_comparison(task_rows[task_rows["n"] == n], exclude_leaky=True) for n in ns
        }
        lines.append(
            f"Without the possibly leaking CHGNet arms ({LEAK_MARK}): {goal_verdict(clean)}."
        )
    return lines, comparisons


def advice_lines(stats: pd.DataFrame, ns: list[int]) -> list[str]:
    """Markdown of "what to use": the three best arms at each N, and the best DIM arm.

    The ranking is by median test MAE over the seeds; an arm is only ranked
    where every seed of its cell has finished (``count`` equal to the most
    seeds of any arm at that N), so a half-run arm cannot lead.
    """
    lines = [
        "What to use: the three arms with the lowest median test MAE at each N, and the "
        "best DIM arm with its rank (arms with every seed finished).",
        "",
        "| N | best | second | third | best DIM arm (rank) |",
        "|---:|---|---|---|---|",
    ]
    for n in ns:
        cell = stats.loc[n]
        cell = cell[cell["count"] == cell["count"].max()]
        ranked = cell["median"].sort_values()
        top = [f"{shown(arm)} {value:.3f}" for arm, value in ranked.iloc[:3].items()]
        top += [""] * (3 - len(top))
        dim = [arm for arm in ranked.index if is_dim_arm(arm)]
        best_dim = ""
        if dim:
            rank = list(ranked.index).index(dim[0]) + 1
            best_dim = f"{shown(dim[0])} {ranked[dim[0]]:.3f} ({rank} of {len(ranked)})"
        lines.append(f"| {n} | " + " | ".join(top) + f" | {best_dim} |")
    return lines


def family_lines(stats: pd.DataFrame, ns: list[int]) -> list[str]:
    """Markdown rows: the best downstream model of each family, per N."""
    lines = [
        "Best model of each family (median test MAE; model in brackets, the family's best on "
        "the test medians, for display: every arm is in the table above):",
        "",
        "| family | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|" + "---:|" * len(ns),
    ]
    for family, label in FAMILIES.items():
        cells, present = [], False
        for n in ns:
            medians = stats.loc[n]["median"] if n in stats.index.get_level_values(0) else None
            arms = [] if medians is None else [a for a in medians.index if arm_family(a) == family]
            if not arms:
                cells.append("")
                continue
            present = True
            best = medians[arms].idxmin()
            model = best[len(family) + 1 :]
            cells.append(f"{medians[best]:.3f}" + (f" ({model})" if model else ""))
        if present:
            mark = f" {LEAK_MARK}" if family == "chgnet" else ""
            lines.append(f"| {label}{mark} | " + " | ".join(cells) + " |")
    return lines


def _seed_count(seeds: pd.Series) -> str:
    """``5 seeds``, or ``3-5 seeds (incomplete)`` while some cells miss seeds."""
    low, high = int(seeds.min()), int(seeds.max())
    return f"{high} seeds" if low == high else f"{low}-{high} seeds (incomplete)"


def _chgnet_version(costs: dict) -> str:
    for cost in costs.values():
        version = cost.get("features", {}).get("chgnet", {}).get("version")
        if version:
            return version
    try:
        from chgnet_features import CHGNET_VERSION

        return CHGNET_VERSION
    except ImportError:
        return "(pinned in benchmarks/chgnet_features.py)"


def _run_line(report: Path, rewrite: bool) -> str:
    """The report's protocol, machine and date line.

    A run's report gives this machine and today. A report rewritten from the
    rows file alone (``rewrite``) keeps the machine and date of the report it
    replaces, the last run's, and adds when it was rewritten.
    """
    today = time.strftime("%Y-%m-%d")
    line = f"Protocol {PROTOCOL}. Machine: {platform.machine()}, {os.cpu_count()} cores, {today}"
    if rewrite:
        start = f"Protocol {PROTOCOL}. Machine: "
        old = report.read_text().splitlines() if report.exists() else []
        ran = next((x.strip() for x in old if x.startswith(start)), None)
        if ran is not None:  # a report rewritten before: its run's part
            ran = ran.split("; report rewritten")[0].removesuffix(" (the last run)")
        run = f"{ran} (the last run)" if ran else f"Protocol {PROTOCOL}. Machine: not recorded"
        line = f"{run}; report rewritten from the rows file on {today}"
    return line + "  "


def summarize(args, out: Path) -> None:
    """Write the Markdown report (and the plots) of a profile from its rows file.

    Parameters
    ----------
    args : argparse.Namespace
        ``profile``, ``plots`` and optionally ``report`` (True: the report is
        rewritten from the rows file without a run; its machine line is kept).
    out : Path
        The folder of the rows file, the cost files and the report.
    """
    stem = report_stem(args.profile)
    rows, n_other = read_rows(out / f"{stem}.csv")
    costs = {}
    for task in TASKS:
        path = out / f"cost_{task}_{args.profile}.json"
        if path.exists():
            costs[task] = json.loads(path.read_text())
    lines = [
        f"# Label-masking benchmark ({args.profile} profile)",
        "",
        f"Command: `skdim benchmark --profile {args.profile}` "
        f"(or `python benchmarks/label_masking.py --profile {args.profile}`)  ",
        _run_line(out / f"{stem}.md", getattr(args, "report", False)),
        "Test MAE: median [25th-75th percentile] over seeds; bold: best median per column.",
        "",
    ]
    if any(is_leaky_arm(arm) for arm in rows["arm"]):
        lines += [
            f"{LEAK_MARK} CHGNet (the chgnet package {_chgnet_version(costs)}, pinned in "
            "benchmarks/chgnet_features.py) was trained on MPtrj, which holds "
            "Materials Project energies of these very materials: its arms may have seen the "
            "test labels of formation energy (possibly leaking), and have seen the structures "
            "of both tasks.",
            "",
        ]
    if n_other:
        lines += [f"({n_other} rows of an earlier protocol in the rows file are not shown.)", ""]
    verdicts = []
    for task in [t for t in TASKS if t in set(rows["task"])]:
        task_rows = rows[rows["task"] == task]
        stats = (
            task_rows.groupby(["n", "arm"])["mae"]
            .describe(percentiles=[0.25, 0.5, 0.75])
            .rename(columns={"50%": "median"})
        )
        ns = sorted(stats.index.get_level_values(0).unique())
        arms = sorted(stats.index.get_level_values(1).unique(), key=arm_order)
        cost = costs.get(task, {})
        seeds = task_rows.groupby(["n", "arm"])["seed"].nunique()
        test = f"{cost['n_test']} test structures, " if "n_test" in cost else ""
        lines += [
            f"## {task_title(task)}",
            "",
            f"{test}{_seed_count(seeds)} per cell.",
            "",
            "| arm | " + " | ".join(f"N={n}" for n in ns) + " |",
            "|---|" + "---:|" * len(ns),
        ]
        best = {n: stats.loc[n]["median"].min() for n in ns}
        for arm in arms:
            cells = []
            for n in ns:
                if (n, arm) not in stats.index:
                    cells.append("")
                    continue
                r = stats.loc[(n, arm)]
                text = f"{r['median']:.3f} [{r['25%']:.3f}-{r['75%']:.3f}]"
                cells.append(f"**{text}**" if r["median"] == best[n] else text)
            lines.append(f"| {shown(arm)} | " + " | ".join(cells) + " |")
        section, comparisons = comparison_lines(task_rows, ns)
        verdicts.append(f"- {task_name(task)}: {goal_verdict(comparisons)}")
        lines += ["", *advice_lines(stats, ns), ""]
        lines += [*section, "", *family_lines(stats, ns), ""]
        lines += cost_lines(task_rows, ns, cost)
    lines += [
        "## Goal",
        "",
        f"A DIM arm at least {100 * GOAL_GAIN:.0f} % better (median test MAE) than every "
        f"non-DIM arm, CHGNet included, at every N <= {GOAL_MAX_N}:",
        "",
        *verdicts,
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if getattr(args, "plots", False) and len(rows):
        curve_plot(rows, out / f"{stem}.png")
