"""Error bars of SiteNetRegressor(n_estimators=k): calibration on the development split.

For each task (``eform``: mp36k formation energy; ``gap``: matbench mp_gap band
gap) the labelled subset of the label-masking benchmark (full profile, seed 0,
its first N = 250 structures, as ``recipe_study.py`` draws them) trains

* ``single``: one network (``n_estimators=1``), the default recipe;
* ``ensemble``: ``n_estimators=k`` (default 5) networks in one fit, the
  default recipe; its first member starts from the single network's weights
  and sees the same batches, so it *is* the single network (checked);
* ``holdout``: the same ensemble on a seeded 80 % of the labelled subset,
  whose remaining 20 % gives a post-hoc scale factor for the standard
  deviation (the 68.3 % quantile of |error| / std there: the factor that makes
  the +-1 std interval cover 68.3 % of the held-out labelled structures);
* ``bootstrap``: the ensemble with per-member Poisson(1) weights on the
  training structures (:class:`BootstrapEnsemble`), the candidate for more
  diverse members that this study compared with skdim's default (it widened
  the spread but made the mean worse; not adopted).

All are scored on the development split (``label_masking._development_ids``:
training-fold structures that are neither labelled nor pretrained on); the
test set is never loaded. Reported: MAE of the ensemble mean and of a single
member, the coverage of +-1 and +-2 std (ideal 68.3 % and 95.4 % for Gaussian
errors), the Spearman correlation of |error| with std, before and after the
scale factor, and the fit time and peak memory of k networks against one.

Each fit runs in a fresh process, so that its peak resident memory is its
own; the fit is timed (CPU time of the process, less sensitive to other load
than the wall clock, which is also recorded) after a short warm-up fit that
compiles the fused activation. Finished fits are cached under
``--cache-dir`` (rerunning resumes; ``--fits bootstrap`` in a second process
fits only those), and the report is rebuilt from the cache once every fit
exists. Usage (about an hour of CPU on one thread for both tasks, data included)::

    OMP_NUM_THREADS=1 SKDIM_DATA=/path/to/data python benchmarks/calibration_study.py

Writes ``benchmarks/results/calibration.{csv,md,png}``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from label_masking import TASKS
from recipe_study import study_data
from scipy.stats import norm, spearmanr

from skdim import SiteNetRegressor
from skdim.datasets import get_data_home
from skdim.nn import ensemble_members

#: Fraction of the labelled subset held out to fit the scale factor (``holdout``).
HOLDOUT = 0.2
#: The fits of a task (see the module docstring).
FITS = ("single", "ensemble", "holdout", "bootstrap")
#: Nominal coverage of +-1 and +-2 standard deviations for Gaussian errors.
NOMINAL = {1: norm.cdf(1) - norm.cdf(-1), 2: norm.cdf(2) - norm.cdf(-2)}


class BootstrapEnsemble(SiteNetRegressor):
    """The ensemble, each member weighting each training structure by its own Poisson(1) draw.

    The candidate for more diverse members (an online form of bagging, drawn
    once per fit); not skdim's default, which this study compares it with.
    The weights travel as extra target columns; the loss is the MAE.
    """

    def _fit_dataset(self, X, y):
        dataset = super()._fit_dataset(X, y)
        rng = np.random.default_rng([self._seed(), 1])
        weights = rng.poisson(1.0, size=(len(dataset), self.n_estimators))
        dataset.y = np.hstack([dataset.y, weights]).astype(dataset.y.dtype)
        return dataset

    def _prepare_fit(self, dataset) -> None:
        full = dataset.y
        dataset.y = full[:, : self.n_outputs_]  # target scaling from the targets only
        try:
            super()._prepare_fit(dataset)
        finally:
            dataset.y = full

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(y_pred.device)
        targets, weights = y_true[:, : self.n_outputs_], y_true[:, self.n_outputs_ :]
        if not training:
            return super().get_loss(y_pred, targets, X, training)
        scale = ensemble_members(self.module_)[0].target_scale  # |a - b| / scale: no shift
        total = y_pred.new_zeros(())
        for k in range(y_pred.shape[1]):
            error = torch.abs((y_pred[:, k] - targets) / scale).mean(dim=1)  # (B,)
            total = total + (weights[:, k] * error).sum() / len(error)
        return total


def _rss_mb() -> float:
    """Resident memory of this process now (MiB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _fit_and_predict(x: list, y: np.ndarray, dev_x: list, options: dict) -> dict:
    """Fit one SiteNetRegressor (in a fresh process) and predict every member on dev.

    Returns the member predictions (n_dev, n_members), the fit's wall-clock
    and CPU seconds, the resident memory before the fit and the peak during
    it (MiB).
    """
    options = dict(options)
    estimator = BootstrapEnsemble if options.pop("bootstrap", False) else SiteNetRegressor
    # warm-up: compiles the fused activation, so that the timed fit does not
    SiteNetRegressor(max_epochs=1, verbose=0, random_state=0).fit(x[:16], y[:16])
    before = _rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    model = estimator(verbose=0, **options).fit(x, y)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "members": model.predict_members(dev_x)[:, :, 0],
        "fit_s": seconds,
        "fit_cpu_s": cpu_seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "steps": int(model.total_steps_),
        "train_loss": float(model.history[-1, "train_loss"]),
    }


def _in_fresh_process(*args) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_fit_and_predict, *args).result()


def run_fits(task: str, args, study: dict, cache: Path) -> dict[str, dict]:
    """The three fits of a task (cached in ``<cache>/<task>_<fit>.npz``)."""
    ids = [i for i in study["split"]["labelled"][str(args.seed)] if i in study["by_id"]]
    ids = ids[: args.n]
    x = [study["by_id"][i][0] for i in ids]
    y = np.array([study["by_id"][i][1] for i in ids], dtype=float)
    held = np.sort(
        np.random.default_rng(args.seed).choice(len(ids), int(HOLDOUT * len(ids)), replace=False)
    )
    fit = np.setdiff1d(np.arange(len(ids)), held)
    steps = args.max_steps if args.max_steps == "auto" else int(args.max_steps)
    single = {"random_state": args.seed, "max_steps": steps}
    ensemble = {**single, "n_estimators": args.k}
    jobs = {
        "single": (x, y, study["dev_x"], single),
        "ensemble": (x, y, study["dev_x"], ensemble),
        "holdout": ([x[i] for i in fit], y[fit], [x[i] for i in held], ensemble),
        "bootstrap": (x, y, study["dev_x"], {**ensemble, "bootstrap": True}),
    }
    results = {}
    for name, job in jobs.items():
        path = cache / f"{task}_n{args.n}_seed{args.seed}_k{args.k}_{args.max_steps}_{name}.npz"
        if not path.exists() and args.fits and name not in args.fits:
            continue
        if not path.exists():
            print(f"{task}: fitting {name} on {len(job[0])} structures", flush=True)
            result = _in_fresh_process(*job)
            target = y[held] if name == "holdout" else study["dev_y"]
            np.savez(path, target=target, **result)
            print(f"{task}: {name} took {result['fit_s']:.0f} s", flush=True)
        with np.load(path) as saved:
            results[name] = {key: saved[key] for key in saved.files}
    return results


def scale_factor(members: np.ndarray, target: np.ndarray) -> float:
    """Factor on the std that makes +-1 std cover 68.3 % of (held-out) targets."""
    z = np.abs(members.mean(axis=1) - target) / members.std(axis=1, ddof=1)
    return float(np.quantile(z, NOMINAL[1]))


def calibration(error: np.ndarray, std: np.ndarray) -> dict:
    """Coverage of +-1 and +-2 std and the Spearman correlation of |error| with std."""
    rho = spearmanr(np.abs(error), std).statistic
    return {
        "cover_1std": float((np.abs(error) <= std).mean()),
        "cover_2std": float((np.abs(error) <= 2 * std).mean()),
        "spearman": float(rho),
        "mean_std": float(std.mean()),
    }


#: Report rows: (name, fit, whether the std is scaled by the holdout fit's factor).
MODELS = [
    ("single network", "single", False),
    ("ensemble", "ensemble", False),
    ("ensemble, std scaled", "ensemble", True),
    ("bootstrap ensemble", "bootstrap", False),
]


def summarize(task: str, args, fits: dict[str, dict]) -> list[dict]:
    """Report rows of a task: single network, ensemble (raw, scaled), bootstrap ensemble."""
    target = fits["ensemble"]["target"]
    scale = scale_factor(fits["holdout"]["members"], fits["holdout"]["target"])
    rows = []
    for model, name, scaled in MODELS:
        fit = fits[name]
        members = fit["members"]
        mean = members.mean(axis=1)
        maes = np.abs(members - target[:, None]).mean(axis=0)
        row = {
            "task": task,
            "n": args.n,
            "seed": args.seed,
            "model": model,
            "members": members.shape[1],
            "n_dev": len(target),
            "mae": float(np.abs(mean - target).mean()),
            "member_mae_min": float(maes.min()),
            "member_mae_max": float(maes.max()),
            "scale": scale if scaled else 1.0,
            "fit_s": float(fit["fit_s"]),
            "fit_cpu_s": float(fit["fit_cpu_s"]),
            "peak_rss_mb": float(fit["peak_rss_mb"]),
            "fit_rss_mb": float(fit["peak_rss_mb"] - fit["rss_before_mb"]),
        }
        if members.shape[1] > 1:
            row.update(calibration(mean - target, row["scale"] * members.std(axis=1, ddof=1)))
        if name == "single":
            first = fits["ensemble"]["members"][:, 0]
            row["same_as_member_1"] = float(np.abs(members[:, 0] - first).max())
        rows.append(row)
    return rows


def write_report(rows: pd.DataFrame, args, path: Path) -> None:
    """The Markdown report of every task in ``rows``."""
    lines = [
        f"# Error bars of SiteNetRegressor(n_estimators={args.k}): calibration on the "
        "development split",
        "",
        "Command: `OMP_NUM_THREADS=1 python benchmarks/calibration_study.py`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, one thread, "
        f"{time.strftime('%Y-%m-%d')}  ",
        f"Labelled subset: the label-masking benchmark's (full profile), seed {args.seed}, "
        f"first N = {args.n}; from scratch, default recipe (cosine, "
        f"`max_steps={args.max_steps!r}`). "
        f"Scored on {int(rows.n_dev.iloc[0])} development structures per task (training-fold "
        "structures neither labelled nor pretrained on); the test set is never loaded.  ",
        f"Coverage: fraction of development structures with |error| <= 1 std (ideal "
        f"{100 * NOMINAL[1]:.1f} %) and <= 2 std (ideal {100 * NOMINAL[2]:.1f} %); rho: "
        "Spearman correlation of |error| with std. *std scaled*: std times a factor fitted "
        f"on {100 * HOLDOUT:.0f} % of the labelled subset held out from a second ensemble "
        "(never on the development split). *bootstrap ensemble*: each member weights each "
        "training structure by its own Poisson(1) draw (a candidate for more diverse "
        "members, not skdim's default).",
        "",
    ]
    for task, block in rows.groupby("task", sort=False):
        by_model = {row.model: row for row in block.itertuples()}
        single, ensemble = by_model["single network"], by_model["ensemble"]
        lines += [
            f"## {task}: {TASKS[task]['label']}",
            "",
            "| model | dev MAE | members alone | +-1 std | +-2 std | rho | mean std |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| single network (= member 1) | {single.mae:.3f} | | | | | |",
        ]
        for model, _, scaled in MODELS[1:]:
            row = by_model[model]
            label = f"{model} x {row.scale:.2f}" if scaled else f"{model} of {row.members}"
            lines.append(
                f"| {label} | {row.mae:.3f} | {row.member_mae_min:.3f}-{row.member_mae_max:.3f} "
                f"| {100 * row.cover_1std:.1f} % | {100 * row.cover_2std:.1f} % | "
                f"{row.spearman:.2f} | {row.mean_std:.3f} |"
            )
        lines += [
            "",
            f"The single network equals member 1 of the ensemble to {single.same_as_member_1:.1e}."
            "  ",
            f"Cost: fit {ensemble.fit_cpu_s:.0f} CPU s for {args.k} networks against "
            f"{single.fit_cpu_s:.0f} s for one ({ensemble.fit_cpu_s / single.fit_cpu_s:.1f}x; "
            f"wall clock {ensemble.fit_s:.0f} against {single.fit_s:.0f} s); peak "
            f"resident memory {ensemble.peak_rss_mb:.0f} MiB against {single.peak_rss_mb:.0f} "
            f"MiB (growth during the fit: {ensemble.fit_rss_mb:.0f} against "
            f"{single.fit_rss_mb:.0f} MiB).",
            "",
        ]
    lines.append("![calibration](calibration.png)")
    path.write_text("\n".join(lines) + "\n")


def _error_std(fit: dict, target: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    members = fit["members"]
    return members.mean(axis=1) - target, factor * members.std(axis=1, ddof=1)


def plot(task_fits: dict[str, dict], args, path: Path) -> None:
    """Per task: RMS error against RMS std in equal-count bins, and coverage curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(task_fits)
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 9.5), squeeze=False)
    for column, task in enumerate(tasks):
        fits = task_fits[task]
        target = fits["ensemble"]["target"]
        scale = scale_factor(fits["holdout"]["members"], fits["holdout"]["target"])
        curves = [  # (label, error of the mean, std)
            (f"ensemble of {args.k}", *_error_std(fits["ensemble"], target, 1.0)),
            (f"ensemble, std x {scale:.2f}", *_error_std(fits["ensemble"], target, scale)),
            ("bootstrap ensemble", *_error_std(fits["bootstrap"], target, 1.0)),
        ]
        unit = TASKS[task]["label"].split("(")[-1].rstrip(")")
        ax = axes[0, column]
        for (label, error, std), marker in zip(curves, "osv"):
            bins = np.array_split(np.argsort(std), 10)
            rms_std = [np.sqrt(np.mean(std[b] ** 2)) for b in bins]
            rms_error = [np.sqrt(np.mean(error[b] ** 2)) for b in bins]
            ax.plot(rms_std, rms_error, marker=marker, label=label)
        top = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([0, top], [0, top], "k--", lw=1, label="ideal")
        ax.set(
            xlabel=f"RMS predicted std ({unit})",
            ylabel=f"RMS error of the mean ({unit})",
            title=f"{task}, N={args.n}: 10 equal-count bins by std",
        )
        ax.legend()
        ax = axes[1, column]
        z = np.linspace(0, 3, 61)
        for label, error, std in curves:
            covered = [(np.abs(error) <= q * std).mean() for q in z]
            ax.plot(norm.cdf(z) - norm.cdf(-z), covered, label=label)
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
        ax.set(
            xlabel="nominal coverage of mean +- z std (Gaussian)",
            ylabel="observed coverage on the development split",
            title=f"{task}: coverage, z = 0 to 3",
        )
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["eform", "gap"])
    parser.add_argument("--n", type=int, default=250, help="labelled structures")
    parser.add_argument("--k", type=int, default=5, help="ensemble members")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-dev", type=int, default=1000, help="development structures")
    parser.add_argument("--max-steps", default="auto", help="training budget (default: auto)")
    parser.add_argument("--data-dir", default=None, help="default: $SKDIM_DATA")
    parser.add_argument("--cache-dir", default="benchmarks/cache/calibration")
    parser.add_argument("--out-dir", default="benchmarks/results")
    parser.add_argument(
        "--fits",
        nargs="+",
        choices=FITS,
        help="fit only these (e.g. in a second process); the report needs all",
    )
    args = parser.parse_args(argv)

    cache, out = Path(args.cache_dir), Path(args.out_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    data = get_data_home(args.data_dir)
    task_fits, rows = {}, []
    for task in args.tasks:
        study = study_data(task, data, cache, args.n_dev)
        task_fits[task] = run_fits(task, args, study, cache)
    if any(set(FITS) - set(fits) for fits in task_fits.values()):
        print("some fits are missing: no report")
        return
    for task, fits in task_fits.items():
        rows += summarize(task, args, fits)
    table = pd.DataFrame(rows)
    table.to_csv(out / "calibration.csv", index=False)
    write_report(table, args, out / "calibration.md")
    plot(task_fits, args, out / "calibration.png")
    print((out / "calibration.md").read_text())


if __name__ == "__main__":
    main()
