"""The label-masking benchmark's figures: test MAE against N, and t-SNE maps of DIM embeddings.

The curve plot has a panel per task and the README's curves: each Site-Net
start, and each feature table with the best of its four downstream models at
each N (as the README's tables pick them); the mean predictor is a
reference line. XRD and the orbital field matrix, far behind on most cells,
are left to the report, which has every arm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from _masking_arms import FAMILIES, LEAK_MARK, arm_family, is_leaky_arm
from _masking_split import TASKS, task_name, task_title

#: Site-Net starts: one curve each.
SITENET = ("sitenet_dim", "sitenet_shipped", "sitenet_transfer", "sitenet_scratch")
#: feature tables: one curve each, the best of the four models at each N.
TABLES = ("dim", "shipped", "shipped_magpie", "random", "input_stats", "magpie_ssf", "chgnet")
#: feature tables left to the report.
NOT_PLOTTED = ("xrd", "ofm")
#: one colour per curve, the same in every panel (blues: DIM).
COLOURS = {
    "sitenet_dim": "#08519c",
    "sitenet_shipped": "#6baed6",
    "sitenet_transfer": "#d62728",
    "sitenet_scratch": "#2ca02c",
    "dim": "#08519c",
    "shipped": "#6baed6",
    "shipped_magpie": "#9ecae1",
    "random": "#7f7f7f",
    "input_stats": "#ff7f0e",
    "magpie_ssf": "#9467bd",
    "chgnet": "#8c564b",
}


def curves(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The plotted curves of one task: family -> quartiles of the test MAE per N.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows (``arm``, ``n``, ``seed``, ``mae``) of one task.

    Returns
    -------
    dict
        Family (a key of :data:`SITENET` or :data:`TABLES`, in that order)
        -> frame indexed by N with ``low``, ``median``, ``high`` (25th, 50th,
        75th percentile over the seeds) and ``model`` (the table's model with
        the lowest median at that N; empty for Site-Net).
    """
    quartiles = rows.groupby(["arm", "n"])["mae"].quantile([0.25, 0.5, 0.75]).unstack()
    quartiles.columns = ["low", "median", "high"]
    quartiles = quartiles.reset_index()
    quartiles["family"] = quartiles["arm"].map(arm_family)
    out = {}
    for family in (*SITENET, *TABLES):
        part = quartiles[quartiles["family"] == family]
        if part.empty:
            continue
        best = part.loc[part.groupby("n")["median"].idxmin()].sort_values("n")
        best["model"] = best["arm"].str[len(family) + 1 :]
        out[family] = best.set_index("n")[["low", "median", "high", "model"]]
    return out


def _label(family: str) -> str:
    return f"{FAMILIES[family]} {LEAK_MARK}" if is_leaky_arm(family) else FAMILIES[family]


def _draw_curves(ax, task_curves: dict) -> dict:
    """Each curve of one panel, side by side at each N; returns family -> legend handle."""
    handles = {}
    for k, (family, curve) in enumerate(task_curves.items()):
        n = np.asarray(curve.index, dtype=float) * 1.02 ** (k - len(task_curves) / 2)
        mid = curve["median"].to_numpy()
        bars = np.vstack([mid - curve["low"].to_numpy(), curve["high"].to_numpy() - mid])
        sitenet = family in SITENET
        handles[family] = ax.errorbar(
            n,
            mid,
            yerr=bars,
            fmt="-o" if sitenet else "--s",
            color=COLOURS.get(family, "black"),
            linewidth=2.2 if sitenet else 1.4,
            markersize=5 if sitenet else 4,
            elinewidth=0.8,
            capsize=2,
            label=_label(family),
        )
    return handles


def _reference(strip, ax, level: float, unit: str) -> bool:
    """The mean predictor's line: in the panel when near the curves, else in a strip above.

    Inside the panel a far mean would squeeze every curve into its lower part;
    the strip shows it above a break in the axis instead. Returns whether the
    strip is used (it is hidden otherwise).
    """
    low, high = ax.get_ylim()
    style = {"color": "0.45", "linestyle": ":", "linewidth": 1.5}
    text = {"ha": "right", "va": "bottom", "color": "0.3", "fontsize": 9}
    label = f"mean predictor {level:.2f} {unit}"
    if level <= high + 0.15 * (high - low):
        ax.axhline(level, **style)
        ax.set_ylim(low, max(high, level * 1.02))
        ax.text(0.99, level, label, transform=ax.get_yaxis_transform(), **text)
        strip.set_visible(False)
        return False
    strip.axhline(level, **style)
    strip.set_ylim(level - 0.05 * (high - low), level + 0.08 * (high - low))
    strip.set_yticks([level], [f"{level:.2f}"])
    strip.text(0.99, level, label, transform=strip.get_yaxis_transform(), **text)
    strip.spines["bottom"].set_visible(False)
    ax.spines["top"].set_visible(False)
    strip.tick_params(axis="x", bottom=False, labelbottom=False)
    marks = {"marker": [(-1, -0.5), (1, 0.5)], "markersize": 8, "linestyle": "none"}
    marks.update({"color": "k", "mec": "k", "mew": 1, "clip_on": False})
    strip.plot([0, 1], [0, 0], transform=strip.transAxes, **marks)  # the break
    ax.plot([0, 1], [1, 1], transform=ax.transAxes, **marks)
    return True


def curve_plot(rows: pd.DataFrame, path: Path) -> None:
    """Test MAE against N, a panel per task, one legend below the panels.

    Medians over the seeds with interquartile bars; Site-Net solid, feature
    tables dashed; the mean predictor a grey dotted reference line (above a
    break in the axis when it is far above the curves).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if t in set(rows["task"])]
    fig = plt.figure(figsize=(6 * len(tasks), 6))
    grid = fig.add_gridspec(2, len(tasks), height_ratios=[1, 9], hspace=0.06)
    handles = {}
    for column, task in enumerate(tasks):
        strip = fig.add_subplot(grid[0, column])
        ax = fig.add_subplot(grid[1, column], sharex=strip)
        sub = rows[rows["task"] == task]
        handles.update(_draw_curves(ax, curves(sub)))
        ns = sorted(sub["n"].unique())
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlim(min(ns) / 1.15, max(ns) * 1.15)
        ax.grid(axis="y", color="0.9")
        ax.set(xlabel="labelled structures N", ylabel=f"test MAE, {TASKS[task]['label']}")
        mean = sub[sub["arm"] == "mean"].groupby("n")["mae"].median()
        unit = TASKS[task]["label"].split("(")[-1].rstrip(")")
        above = len(mean) > 0 and _reference(strip, ax, float(mean.median()), unit)
        strip.set_visible(above)
        (strip if above else ax).set_title(task_title(task).split(" (")[0])
    hidden = [FAMILIES[f] for f in NOT_PLOTTED if any(arm_family(a) == f for a in rows["arm"])]
    note = "Medians over the seeds; bars: interquartile range. Feature tables (dashed): the "
    note += "best of forest, ridge, MLP and kNN at each N."
    if hidden:
        note += f"\n{' and '.join(hidden)}: in the report, with every arm."
    if any(is_leaky_arm(f) for f in handles):
        note += f"\n{LEAK_MARK} trained on Materials Project energies: on formation energy it "
        note += "may have seen the test labels."
    handles = [handles[f] for f in (*SITENET, *TABLES) if f in handles]  # every panel's
    fig.legend(
        handles,
        [h.get_label() for h in handles],
        loc="lower center",
        ncol=3,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.text(0.5, 0.995, note, ha="center", va="top", fontsize=9, color="0.25")
    legend_rows = -(-len(handles) // 3)
    fig.subplots_adjust(
        left=0.07, right=0.98, top=0.86, bottom=0.11 + 0.035 * legend_rows, wspace=0.2
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)


def embedding_plot(task: str, dim, inputs: list, y: np.ndarray, path: Path) -> None:
    """t-SNE of the protocol DIM embeddings of the test set, coloured by the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    points = TSNE(perplexity=30, init="pca", random_state=0).fit_transform(dim.transform(inputs))
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=y, s=6, cmap="viridis")
    fig.colorbar(scatter, label=TASKS[task]["label"])
    ax.set(title=f"t-SNE of DIM embeddings, {task_name(task)} test set", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
