"""Per-epoch checkpoints that resume exactly, and only the run they belong to.

A checkpoint directory holds skorch's ``params.pt``, ``optimizer.pt`` and
``history.json``, plus two files of skdim's:

- ``random_state.json``: the torch and batch-order random states at the end
  of the epoch, so that a resumed run draws the same batches, negatives and
  noise as an uninterrupted one (bitwise identical on CPU);
- ``fingerprint.json``: a digest of the training data and of every setting
  that shapes training. A later ``fit`` resumes only when both match, and
  otherwise refuses with a clear error instead of returning the old model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback

__all__ = ["RandomStateCheckpoint", "check_fingerprint", "fingerprint", "restore_random_state"]

#: Parameters that may change between an interrupted fit and its resumption.
RESUMABLE_CHANGES = frozenset(
    {"max_epochs", "verbose", "n_jobs", "device", "checkpoint_dir", "callbacks", "warm_start"}
)
RANDOM_STATE_FILE = "random_state.json"
FINGERPRINT_FILE = "fingerprint.json"


class RandomStateCheckpoint(Callback):
    """Write the random states next to skorch's checkpoint after every epoch.

    Parameters
    ----------
    dirname : str
        The checkpoint directory.
    """

    def __init__(self, dirname: str):
        self.dirname = dirname

    def on_epoch_end(self, net, **kwargs) -> None:
        sampler = getattr(net, "sampler_rng_", None)
        state = {
            "epoch": len(net.history),
            "torch": torch.get_rng_state().tolist(),
            "sampler": None if sampler is None else sampler.bit_generator.state,
        }
        path = Path(self.dirname)
        path.mkdir(parents=True, exist_ok=True)
        temporary = path / (RANDOM_STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(path / RANDOM_STATE_FILE)


def restore_random_state(net, dirname: str | Path) -> None:
    """Set the torch and batch-order random states saved with the last epoch.

    Parameters
    ----------
    net : skdim estimator
        The estimator being resumed (its history already loaded).
    dirname : path
        The checkpoint directory.
    """
    path = Path(dirname) / RANDOM_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the checkpoint in {dirname} cannot be resumed exactly; "
            "delete the directory to start again"
        )
    state = json.loads(path.read_text())
    if state["epoch"] != len(net.history):
        raise ValueError(
            f"{path} belongs to epoch {state['epoch']} but the history in {dirname} has "
            f"{len(net.history)} epochs (an interrupted write?); delete the directory to start "
            "again"
        )
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["sampler"] is not None:
        rng = np.random.default_rng()
        rng.bit_generator.state = state["sampler"]
        net.sampler_rng_ = rng


def fingerprint(net, dataset) -> dict[str, str]:
    """Digests of the training data and of the settings that shape training.

    Parameters
    ----------
    net : skdim estimator
    dataset : torch Dataset
        The training data as ``fit`` sees it.

    Returns
    -------
    dict
        ``data`` and ``settings``, hexadecimal sha256 digests.
    """
    data = hashlib.sha256()
    inputs = getattr(dataset, "inputs", None)
    if inputs is not None:
        for x in inputs:
            for array in (x.site_features, x.pair_features, x.neighbor_site):
                data.update(np.ascontiguousarray(array).tobytes())
    elif getattr(dataset, "content_sha256", None):  # an on-disk store: its own digest
        data.update(dataset.content_sha256.encode())
    else:  # another dataset streamed from disk: its sizes
        from skdim.data import item_sizes

        for array in item_sizes(dataset):
            data.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    targets = getattr(dataset, "y", None)
    if targets is not None:
        data.update(np.ascontiguousarray(targets, dtype=np.float64).tobytes())
    params = {
        name: repr(value)
        for name, value in sorted(net.get_params(deep=False).items())
        if name not in RESUMABLE_CHANGES
    }
    params["seed"] = repr(net._seed())
    settings = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    return {"data": data.hexdigest(), "settings": settings.hexdigest()}


def check_fingerprint(dirname: str | Path, current: dict[str, str]) -> None:
    """Refuse to resume a checkpoint made with other data or settings.

    Parameters
    ----------
    dirname : path
        The checkpoint directory (its ``fingerprint.json`` is written when
        missing).
    current : dict
        :func:`fingerprint` of the fit about to run.

    Raises
    ------
    ValueError
        Naming what differs: the data or the settings.
    """
    path = Path(dirname) / FINGERPRINT_FILE
    if not path.is_file():
        Path(dirname).mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current))
        return
    saved = json.loads(path.read_text())
    differ = [key for key in ("data", "settings") if saved.get(key) != current[key]]
    if differ:
        what = " and ".join(
            {"data": "training data (structures or targets)", "settings": "settings"}[k]
            for k in differ
        )
        raise ValueError(
            f"checkpoint_dir {dirname} holds a run with other {what} than this fit; "
            "use a new checkpoint_dir (or delete this one) to train this model"
        )
