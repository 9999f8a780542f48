"""Out-of-core scaling: peak memory and time of featurizing to a store and training from it.

For each size n (the first n rows of ``matbench_mp_gap.csv.gz``), fresh
subprocesses run each measurement, so that each ``ru_maxrss`` is its own peak:

1. featurize: stream the CIF column with ``iter_csv_texts`` into
   ``featurize_to_store`` (CIFs parsed in the worker, one shard at a time);
2. ``DIMPretrainer.fit`` streamed from the ``FeaturizedStore`` for a *fixed
   number of steps*, not a full epoch (an epoch over 10^5 structures takes
   hours on one CPU core): the shuffled batch list of the whole epoch is
   built (its memory is measured), then per variant ``DATA:SELECT:STEPS``
   ``first`` trains its first STEPS batches (drawn across the whole store),
   ``largest`` the STEPS batches with the most padded pairs (these set the
   peak of a full epoch) and ``full`` all of them. ``bounded`` keeps only
   crystals with P x J <= batch_pairs / 2: a larger crystal makes a batch of
   its own beyond the budget (up to ~8x with max_sites=500), so the largest
   crystal in the data, not the data size, sets the peak of a full epoch.

Then resumability is shown: a featurization subprocess is killed (SIGKILL)
when half of its shards are finished and rerun, and the finished shards' inodes, mtimes and
SHA-256 digests are compared. Everything is single-threaded; start it with
``nice``. Usage::

    nice -n 10 python benchmarks/bench_scale.py --sizes 10000 100000 \\
        --variants bounded:first:100 all:largest:20
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import datetime
import hashlib
import json
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SKDIM_DATA", ROOT.parent / "shared" / "data"))


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    status = Path("/proc/self/status").read_text().split("\n")
    current = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return current / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_featurize(args) -> dict:
    from skdim.store import featurize_to_store, iter_csv_texts

    baseline, _ = rss_mb()
    start = time.perf_counter()
    texts = iter_csv_texts(DATA / "matbench_mp_gap.csv.gz", nrows=args.n)
    store = featurize_to_store(texts, args.store, shard_size=args.shard_size, n_jobs=1)
    wall = time.perf_counter() - start
    size = sum(p.stat().st_size for p in Path(args.store).iterdir())
    return {
        "wall_s": wall,
        "baseline_mb": baseline,
        "peak_mb": rss_mb()[1],
        "stored": len(store),
        "skipped": len(store.skipped),
        "store_mb": size / 2**20,
    }


def phase_epoch(args) -> dict:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Subset

    from skdim import DIMPretrainer
    from skdim.data import item_sizes
    from skdim.store import FeaturizedStore

    data, select, steps = args.variant.split(":")

    class CappedPretrainer(DIMPretrainer):
        """DIMPretrainer that trains `steps` batches of the epoch's shuffled batch list."""

        def get_iterator(self, dataset, training=False):
            loader = super().get_iterator(dataset, training)
            if not training:
                return loader
            batches = list(loader.batch_sampler)  # the whole epoch, as in a full run
            n_sites, n_neighbors = item_sizes(dataset)
            padded = [len(b) * n_sites[b].max() * n_neighbors[b].max() for b in batches]
            if select == "first":
                keep = range(min(int(steps), len(batches)))
            elif select == "largest":
                keep = sorted(np.argsort(padded)[-int(steps) :])
            else:
                keep = range(len(batches))
            self.n_batches_ = len(batches)
            self.max_padded_ = int(max(padded[i] for i in keep))
            batches = [batches[i] for i in keep]
            return DataLoader(dataset, batch_sampler=batches, collate_fn=loader.collate_fn)

    class StoreSubset(Subset):
        def feature_scaling(self):
            return self.dataset.feature_scaling()

    torch.set_num_threads(1)
    baseline, _ = rss_mb()
    store = FeaturizedStore(args.store)
    dataset = store
    if data == "bounded":  # crystals that fit half the budget: no batch above ~1.5x budget
        fits = store.n_sites * store.n_neighbors <= args.batch_pairs // 2
        dataset = StoreSubset(store, np.flatnonzero(fits))
    model = CappedPretrainer(
        **store.featurization,
        max_epochs=1,
        batch_pairs=args.batch_pairs,
        engineered_negatives=args.engineered_negatives,
        validation_fraction=None,
        random_state=0,
        verbose=0,
    )
    start = time.perf_counter()
    model.fit(dataset)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "baseline_mb": baseline,
        "peak_mb": rss_mb()[1],
        "structures": len(dataset),
        "steps": len(model.history[-1, "batches"]),
        "batches_per_epoch": model.n_batches_,
        "max_padded_pairs": model.max_padded_,
        "train_loss": float(model.history[-1, "train_loss"]),
    }


def run_phase(phase: str, n: int, store: Path, args, variant: str = "") -> dict:
    out = store.with_name(f"{store.name}.{phase}{variant.replace(':', '_')}.json")
    if args.reuse and out.is_file():  # measured by an earlier run on the same workdir
        return json.loads(out.read_text())
    command = [sys.executable, __file__, "--phase", phase, "--n", str(n), "--store", str(store)]
    command += ["--json", str(out), "--shard-size", str(args.shard_size)]
    command += ["--variant", variant, "--batch-pairs", str(args.batch_pairs)]
    if not args.engineered_negatives:
        command.append("--no-engineered-negatives")
    before = finished_shards(store) if phase == "featurize" else {}
    subprocess.run(command, check=True)
    result = json.loads(out.read_text())
    if phase == "featurize":  # a rerun on an interrupted store: were its shards kept?
        after = shard_stats(store)
        result["shards_present"] = len(before) // 2
        result["present_untouched"] = all(after[name] == v for name, v in before.items())
        out.write_text(json.dumps(result))
    return result


def shard_stats(store: Path) -> dict[str, tuple[int, int, str]]:
    """(inode, mtime in ns, SHA-256) of every shard file."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in store.glob("shard-*")
    }


def finished_shards(store: Path) -> dict[str, tuple[int, int, str]]:
    """:func:`shard_stats` of the shards whose ``.npz`` (written last) exists."""
    stats = shard_stats(store) if store.is_dir() else {}
    stems = [name[: -len(".npz")] for name in stats if name.endswith(".npz")]
    return {name: stats[name] for stem in stems for name in (f"{stem}.npz", f"{stem}.bin")}


def resume_demo(n: int, store: Path, args) -> dict:
    """Kill a featurization halfway (SIGKILL), rerun it, compare the finished shards."""
    shutil.rmtree(store, ignore_errors=True)
    store.with_name(f"{store.name}.featurize.json").unlink(missing_ok=True)  # never --reuse
    half = max(1, -(-n // args.shard_size) // 2)
    command = [sys.executable, __file__, "--phase", "featurize", "--n", str(n)]
    command += ["--store", str(store), "--json", os.devnull, "--shard-size", str(args.shard_size)]
    process = subprocess.Popen(command)
    while len(list(store.glob("shard-*.npz"))) < half and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = run_phase("featurize", n, store, args)
    return {
        "n": n,
        "shards_total": len(list(store.glob("shard-*.npz"))),
        "shards_done_at_kill": result["shards_present"],
        "untouched": result["present_untouched"],
        "rerun_wall_s": result["wall_s"],
        "stored": result["stored"],
    }


VARIANTS = {
    "bounded:first": "crystals with P x J <= batch_pairs / 2; the first {k} batches",
    "all:largest": "all crystals; the {k} batches with the most padded pairs, in epoch order",
    "all:full": "all crystals; the full epoch",
}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def report(args, rows: list[dict], demo: dict, wall: float) -> str:
    niceness = os.nice(0)
    prefix = f"nice -n {niceness} " if niceness else ""
    shown = sys.argv[1:]
    if args.note:  # the note is printed below, not in the command
        at = shown.index("--note")
        shown = [*shown[:at], "--note", "...", *shown[at + 2 :]]
    lines = [
        "# Out-of-core scaling: featurize to a store, then train streamed from it",
        "",
        f"Command: `{prefix}python benchmarks/bench_scale.py {' '.join(shown)}`"
        f" (total wall time {wall / 60:.1f} min)",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {cpu_model()}, {platform.platform()}, os.cpu_count()={os.cpu_count()},"
        f" {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM;"
        " one thread, one fresh process per measurement (data loading in-process),"
        " cores shared with another benchmark (wall times are indicative only)",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        *(
            [
                "- `--reuse`: measurements saved in the work directory by an earlier run of the"
                " same command were read back, not repeated; the others ran in this one"
            ]
            if args.reuse
            else []
        ),
        f"- python {platform.python_version()}; data: the first n rows of"
        " matbench_mp_gap.csv.gz, CIF texts streamed and parsed inside featurization;"
        f" default featurization (max_atoms 50, max_sites 500); {args.shard_size} per shard",
        "- training: **a fixed number of steps, not a full epoch** (an epoch over 10^5"
        " structures takes hours on one core): DIMPretrainer, max_epochs=1,"
        f" batch_pairs={args.batch_pairs}, engineered_negatives={args.engineered_negatives},"
        " validation_fraction=None; the shuffled batch list of the whole epoch is built over"
        " the whole store, then only the selected batches are trained",
        "- peak: `ru_maxrss` of the measurement's own process (items are read with"
        " `os.pread`, no memory map, so the page cache is not counted); after imports the"
        f" processes hold {rows[0]['featurize']['baseline_mb']:.0f} MiB",
        "",
        "| structures | stored | skipped | store MiB | featurize s | peak MiB | resumed |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        f = r["featurize"]
        resumed = "no"
        if f.get("shards_present"):
            kept = "untouched" if f["present_untouched"] else "REWRITTEN"
            resumed = (
                f"yes: {f['shards_present']} shards were finished by an interrupted earlier"
                f" run ({kept}); time and peak are this run's, over the other shards"
            )
        lines.append(
            f"| {r['n']} | {f['stored']} | {f['skipped']} | {f['store_mb']:.0f} |"
            f" {f['wall_s']:.0f} | {f['peak_mb']:.0f} | {resumed} |"
        )
    lines += [
        "",
        "| structures | trained on | steps | batches/epoch | max padded pairs | s | peak MiB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for variant, e in r["epochs"].items():
            data, select, k = variant.split(":")
            what = VARIANTS[f"{data}:{select}"].format(k=k)
            lines.append(
                f"| {r['n']} | {what} ({e['structures']} crystals) | {e['steps']} |"
                f" {e['batches_per_epoch']} | {e['max_padded_pairs']} | {e['wall_s']:.0f} |"
                f" {e['peak_mb']:.0f} |"
            )
    small, large = rows[0], rows[-1]
    lines += ["", f"Data grows {large['n'] / small['n']:.1f}x; peak RSS grows:", ""]
    ratio = large["featurize"]["peak_mb"] / small["featurize"]["peak_mb"]
    lines.append(f"- featurize to store: {ratio:.3f}x")
    for variant in small["epochs"]:
        if variant in large["epochs"]:
            ratio = large["epochs"][variant]["peak_mb"] / small["epochs"][variant]["peak_mb"]
            lines.append(f"- training, {variant}: {ratio:.3f}x")
    lines += [
        "",
        f"Resume: featurization of {demo['n']} structures was killed (SIGKILL) with"
        f" {demo['shards_done_at_kill']} of {demo['shards_total']} shards finished; the rerun"
        f" finished in {demo['rerun_wall_s']:.0f} s and stored {demo['stored']} structures;"
        f" finished shards {'untouched' if demo['untouched'] else 'REWRITTEN'}"
        " (same inode, mtime and SHA-256).",
    ]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--batch-pairs", type=int, default=32768)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["bounded:first:100", "all:largest:20"],
        help="DATA:SELECT:STEPS[@SIZE], DATA bounded|all, SELECT first|largest|full",
    )
    parser.add_argument(
        "--no-engineered-negatives", dest="engineered_negatives", action="store_false"
    )
    parser.add_argument("--resume-demo", type=int, default=6000, help="structures")
    parser.add_argument("--note", default="", help="text added at the end of the report")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/skdim_bench_scale"))
    parser.add_argument(
        "--reuse", action="store_true", help="keep results of an earlier run in --workdir"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.md")
    parser.add_argument("--phase", choices=["featurize", "epoch"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = (phase_featurize if args.phase == "featurize" else phase_epoch)(args)
        Path(args.json).write_text(json.dumps(result))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.perf_counter()
    for n in args.sizes:
        store = args.workdir / f"store_{n}"
        if not args.reuse:
            shutil.rmtree(store, ignore_errors=True)
        row = {"n": n, "featurize": run_phase("featurize", n, store, args), "epochs": {}}
        print(json.dumps(row), flush=True)
        for variant in args.variants:
            variant, _, only = variant.partition("@")
            if not only or int(only) == n:
                row["epochs"][variant] = run_phase("epoch", n, store, args, variant)
                print(variant, json.dumps(row["epochs"][variant]), flush=True)
        rows.append(row)
    demo = resume_demo(args.resume_demo, args.workdir / "store_resume", args)
    print(json.dumps(demo), flush=True)
    text = report(args, rows, demo, time.perf_counter() - start)
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
