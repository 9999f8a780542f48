"""Data-parallel pretraining: 2 processes (gloo, CPU) against 1 process on the same batches.

Run as a script, this file is the worker that ``torchrun`` starts.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state
from skorch.callbacks import Callback

from skdim.nn import SiteNetDIM

ROOT = Path(__file__).resolve().parents[1]


class DeterministicDIM(SiteNetDIM):
    """SiteNetDIM without random draws (fixed derangement, no noise, all neighbours).

    Gradients flow as in training; only the draws are fixed, so that runs with
    different random streams per rank can be compared step by step.
    """

    def forward(self, **batch):
        self.training = False
        try:
            return super().forward(**batch)
        finally:
            self.training = True


class RecordBatches(Callback):
    """Fingerprint (sum of atomic numbers) of every training batch a rank sees."""

    def __init__(self):
        self.seen = []
        self.initial = None

    def on_train_begin(self, net, **kwargs):
        module = net.accelerator.unwrap_model(net.module_)
        self.initial = copy.deepcopy(module.state_dict())

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.seen.append(int(batch[0]["atomic_numbers"].sum()))


def worker(store_path: str, out: str, accumulation: int, batch_pairs: int) -> None:
    from skdim.distributed import DistributedDIMPretrainer, make_accelerator
    from skdim.store import FeaturizedStore

    store = FeaturizedStore(store_path)
    record = RecordBatches()
    model = DistributedDIMPretrainer(
        module=DeterministicDIM,
        accelerator=make_accelerator(gradient_accumulation_steps=accumulation),
        **store.featurization,
        max_epochs=1,
        lr_schedule="constant",  # the schedule counts batches, which differ per rank
        batch_pairs=batch_pairs,
        validation_fraction=None,
        random_state=0,
        verbose=0,
        callbacks=[("record", record)],
    ).fit(store)
    # random_state=None: rank 0 draws the seed, so all ranks split alike
    unseeded = DistributedDIMPretrainer(accelerator=model.accelerator, validation_fraction=0.25)
    _, valid = unseeded.get_split_datasets(store)
    split = (unseeded._seed(), valid.indices.tolist())
    seen, splits = [record.seen], [split]
    if model.accelerator.num_processes > 1:
        seen = [None] * model.accelerator.num_processes
        torch.distributed.all_gather_object(seen, record.seen)
        splits = [None] * model.accelerator.num_processes
        torch.distributed.all_gather_object(splits, split)
    if model.accelerator.is_main_process:
        result = {
            "initial": record.initial,
            "final": model.to_pretrainer().module_.state_dict(),
            "train_loss": model.history[-1, "train_loss"],
            "seen": seen,
            "splits": splits,
            "world_size": model.accelerator.num_processes,
        }
        torch.save(result, out)
    # every rank reaches here before any destroys the process group: a rank that
    # tears gloo down while its peer is still in a collective aborts it (SIGABRT)
    model.accelerator.wait_for_everyone()
    model.accelerator.end_training()


@pytest.fixture(scope="module")
def store(small, tmp_path_factory):
    from skdim.store import featurize_to_store

    structures, _ = small
    return featurize_to_store(structures, tmp_path_factory.mktemp("dist") / "store")


def even_budget(store) -> tuple[int, int]:
    """A batch budget that gives an even number (>= 4) of training batches in epoch 1.

    Mirrors how SiteNetMixin seeds its sampler, so that 2 ranks and 2-step
    accumulation cover the same pairs of batches.
    """
    from skdim.data import PairBudgetBatchSampler

    seed = int(check_random_state(0).randint(2**31 - 1))
    for budget in range(3000, 12000, 500):
        sampler = PairBudgetBatchSampler(
            store.n_sites,
            store.n_neighbors,
            budget,
            shuffle=True,
            min_crystals=2,
            random_state=np.random.default_rng(seed),
        )
        n_batches = len(list(sampler))
        if n_batches >= 4 and n_batches % 2 == 0:
            return budget, n_batches
    raise AssertionError("no budget gives an even number of batches")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], timeout: int = 120, attempts: int = 3) -> None:
    """Run a command; relaunch only when a rank died in gloo's C++ layer.

    On a loaded 2-core machine one 2-rank launch in a few aborts with
    "terminate called without an active exception" (SIGABRT) before training
    starts; any other failure, and a third abort, fails the test.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for _ in range(attempts):
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode == 0 or "terminate called without" not in done.stdout + done.stderr:
            break
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory):
    pytest.importorskip("accelerate")
    out = tmp_path_factory.mktemp("runs")
    budget, n_batches = even_budget(store)
    script = [str(Path(__file__).resolve()), str(store.path)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    run([*launcher, *script, str(out / "two.pt"), "1", str(budget)])
    run([sys.executable, *script, str(out / "one.pt"), "2", str(budget)])
    load = lambda name: torch.load(out / name, weights_only=False)  # noqa: E731
    return load("one.pt"), load("two.pt"), n_batches


def test_ranks_take_alternate_batches_of_one_shuffled_list(runs):
    one, two, n_batches = runs
    assert one["world_size"] == 1 and two["world_size"] == 2
    (reference,) = one["seen"]
    assert len(reference) == n_batches
    assert two["seen"] == [reference[0::2], reference[1::2]]


def test_unseeded_ranks_share_the_seed_and_validation_split(runs):
    _, two, _ = runs
    first, second = two["splits"]
    assert first == second and len(first[1]) == 10


def test_two_processes_match_one_process_with_gradient_accumulation(runs):
    """DDP over 2 ranks == 1 process accumulating the same 2 batches per step.

    This is the documented negative sampling: each rank draws negatives within
    its own batch, and a step averages the two per-batch losses.
    """
    one, two, _ = runs
    for name, initial in one["initial"].items():
        torch.testing.assert_close(two["initial"][name], initial)
    changed = 0.0
    for name, final in one["final"].items():
        torch.testing.assert_close(two["final"][name], final, rtol=1e-4, atol=1e-5)
        changed = max(changed, float((final - one["initial"][name]).abs().max()))
    assert changed > 1e-3  # training moved the weights, so the match means something
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_command_line_under_torchrun_with_validation_and_resume(store, tmp_path):
    """``torchrun ... skdim-pretrain STORE``: rank-0 checkpoints, a resume, a portable model."""
    pytest.importorskip("accelerate")
    from skdim import DIMPretrainer

    checkpoint = tmp_path / "checkpoint"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    args = [*launcher, "-m", "skdim", "pretrain", str(store.path), "--distributed"]
    args += ["--out", str(tmp_path / "dim"), "--batch-pairs", "6000", "--max-epochs"]
    options = ["--validation-fraction", "0.25", "--checkpoint-dir", str(checkpoint)]
    run([*args, "1", *options])
    launcher[-1] = str(free_port())
    run([*args, "2", *options])  # resumes after epoch 1
    history = json.loads((checkpoint / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(np.isfinite(row["valid_loss"]) for row in history)
    model = DIMPretrainer.load(tmp_path / "dim")
    assert type(model) is DIMPretrainer
    assert model.transform(store).shape == (len(store), 128)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
