"""Per-epoch checkpoints that resume exactly, and only the run they belong to.

A checkpoint directory holds skorch's ``params.pt``, ``optimizer.pt`` and
``history.json``, plus two files of skdim's:

- ``random_state.json``: the torch and batch-order random states at the end
  of the epoch, so that a resumed run draws the same batches, negatives and
  noise as an uninterrupted one (bitwise identical on CPU);
- ``fingerprint.json``: a digest of the training data and of every setting
  that shapes training. A later ``fit`` resumes only when both match, and
  otherwise refuses with a clear error instead of returning the old model.

:func:`checkpoint_run` wraps the training of ``fit``: it locks the directory
(a second fit into it at the same time is refused) and turns a Ctrl-C, which
skorch swallows, back into a KeyboardInterrupt once the last whole epoch is
saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, Checkpoint

from skdim.nn.attention import legacy_parameter_names

__all__ = [
    "LOCK_FILE",
    "RandomStateCheckpoint",
    "check_fingerprint",
    "check_torch_files",
    "checkpoint_run",
    "fingerprint",
    "make_checkpoint",
    "restore_random_state",
    "state_digest",
    "upgrade_optimizer_state",
]

#: Parameters that may change between an interrupted fit and its resumption.
RESUMABLE_CHANGES = frozenset(
    {"max_epochs", "verbose", "n_jobs", "device", "checkpoint_dir", "callbacks", "warm_start"}
)
RANDOM_STATE_FILE = "random_state.json"
FINGERPRINT_FILE = "fingerprint.json"
#: Held by the fit that trains into a checkpoint directory.
LOCK_FILE = "skdim.lock"


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
        name = random_state_file(net)
        temporary = path / (name + ".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(path / name)


def random_state_file(net) -> str:
    """Name of the random-state file of this process.

    ``random_state.json``, or ``random_state.rank<k>.json`` for process k > 0
    of a data-parallel run: each process draws its own negatives and noise.
    """
    accelerator = getattr(net, "accelerator_", None) or getattr(net, "accelerator", None)
    index = getattr(accelerator, "process_index", 0) if accelerator is not None else 0
    return RANDOM_STATE_FILE if index == 0 else f"random_state.rank{index}.json"


def make_checkpoint(dirname: str | Path) -> Checkpoint:
    """Skorch's Checkpoint writing weights, optimizer and history after every epoch."""
    return Checkpoint(
        monitor=None,  # every epoch
        f_params="params.pt",
        f_optimizer="optimizer.pt",
        f_criterion=None,
        f_history="history.json",
        f_pickle=None,
        dirname=str(dirname),
    )


def restore_random_state(net, dirname: str | Path) -> None:
    """Set the torch and batch-order random states saved with the last epoch.

    Parameters
    ----------
    net : skdim estimator
        The estimator being resumed (its history already loaded).
    dirname : path
        The checkpoint directory.
    """
    path = Path(dirname) / random_state_file(net)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the checkpoint in {dirname} cannot be resumed exactly; "
            "delete the directory to start again"
        )
    try:
        state = json.loads(path.read_text())
        epoch, torch_state, sampler = state["epoch"], state["torch"], state["sampler"]
        torch_state = torch.tensor(torch_state, dtype=torch.uint8)
    except (ValueError, KeyError, TypeError, RecursionError, RuntimeError, OverflowError) as error:
        raise ValueError(
            f"{path} is damaged ({type(error).__name__}: {error!s:.200}); the checkpoint in "
            f"{dirname} cannot be resumed exactly; delete the directory to start again"
        ) from None
    if epoch != len(net.history):
        raise ValueError(
            f"{path} belongs to epoch {epoch} but the history in {dirname} has "
            f"{len(net.history)} epochs (an interrupted write?); delete the directory to start "
            "again"
        )
    try:
        torch.set_rng_state(torch_state)
        if sampler is not None:
            rng = np.random.default_rng()
            rng.bit_generator.state = sampler
            net.sampler_rng_ = rng
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise ValueError(
            f"{path} holds no valid random state ({type(error).__name__}: {error!s:.200}); "
            f"delete {dirname} to start again"
        ) from None


def check_torch_files(net, kwargs: dict) -> None:
    """Read the torch files ``load_params(**kwargs)`` will load, refusing one by name.

    skorch would raise torch's own UnpicklingError, whose advice (load with
    ``weights_only=False``) is what a hostile file wants; a damaged file
    would give an error that does not name it.

    Parameters
    ----------
    net : skdim estimator
        The estimator about to load.
    kwargs : dict
        The keyword arguments of ``load_params``.

    Raises
    ------
    ValueError
        Naming the file and what torch's unpickler refused in it.
    """
    from skdim.persistence import unpickling_detail

    checkpoint = kwargs.get("checkpoint")
    keys = ("f_params", "f_optimizer", "f_criterion")
    files = kwargs
    if checkpoint is not None:  # names without placeholders (skdim's), in its directory
        names = {key: getattr(checkpoint, key, None) for key in keys}
        files = {k: Path(checkpoint.dirname, v) for k, v in names.items() if isinstance(v, str)}
    for key in keys:
        file = files.get(key)
        if not isinstance(file, (str, Path)) or not Path(file).is_file():
            continue
        try:
            torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{file} holds objects other than tensors, or is damaged; refused (checkpoint "
                f"files are loaded with weights_only=True): {unpickling_detail(error)}"
            ) from None
        except (EOFError, RuntimeError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ValueError(
                f"{file} is truncated or not a torch file ({type(error).__name__}: "
                f"{error!s:.200}); delete the checkpoint directory to start again"
            ) from None


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
    if getattr(net, "pretrained", None) is not None:  # its weights, not its repr or path
        params["pretrained"] = net._pretrained_digest()
    settings = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    return {"data": data.hexdigest(), "settings": settings.hexdigest()}


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        Weights (on any device).

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(current))
        partial.replace(path)  # a reader never sees half a file
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


@contextlib.contextmanager
def checkpoint_run(net, dataset, dirname: str | Path | None) -> Iterator[bool]:
    """The training part of ``fit``: lock, fingerprint check, interrupt.

    Parameters
    ----------
    net : skdim estimator
        The estimator being fitted.
    dataset : torch Dataset
        Its training data (for :func:`fingerprint`).
    dirname : path or None
        ``checkpoint_dir``; None trains without checkpoints.

    Yields
    ------
    bool
        Whether ``dirname`` holds a run to resume.

    Raises
    ------
    BlockingIOError
        If another fit trains into ``dirname`` now (it holds ``skdim.lock``).
    KeyboardInterrupt
        On leaving, if Ctrl-C (SIGINT) interrupted training: skorch ends the
        epoch loop quietly on it; the message says what the checkpoint kept.
    """
    owner = dirname is not None and net._writes_checkpoints()
    with contextlib.ExitStack() as stack:
        if owner:
            stack.enter_context(_lock(Path(dirname)))
        interrupted = stack.enter_context(_watch_interrupt())
        resumable = (
            dirname is not None and Path(dirname, "history.json").exists() and not net.warm_start
        )
        if owner:
            current = fingerprint(net, dataset)
            if not resumable:  # a new run: forget whatever the directory held
                Path(dirname, FINGERPRINT_FILE).unlink(missing_ok=True)
            check_fingerprint(dirname, current)
        yield resumable
    if interrupted:
        raise KeyboardInterrupt(_interrupt_message(dirname))


@contextlib.contextmanager
def _lock(dirname: Path) -> Iterator[None]:
    """Hold ``dirname/skdim.lock``; refuse at once when another process holds it."""
    from filelock import FileLock, Timeout

    dirname.mkdir(parents=True, exist_ok=True)
    lock = FileLock(dirname / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BlockingIOError(
            f"checkpoint_dir {dirname} is in use by another fit (it holds {LOCK_FILE}); "
            "wait for that fit to end, or use another checkpoint_dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _watch_interrupt() -> Iterator[list]:
    """Note a SIGINT (Ctrl-C) while training; yields a list that is non-empty after one.

    The handler that was installed still runs (Python's raises
    KeyboardInterrupt, which skorch catches). Outside the main thread, or when
    SIGINT is ignored or left to the system, nothing is installed.
    """
    seen: list[bool] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if not callable(previous):  # SIG_IGN, SIG_DFL, or not set from Python
        yield seen
        return

    def handler(signum, frame):
        seen.append(True)
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_message(dirname: str | Path | None) -> str:
    if dirname is None:
        return (
            "training was interrupted; the model is partly trained. Set checkpoint_dir "
            "(skdim fit/pretrain --checkpoint-dir) to keep each epoch and resume"
        )
    try:
        epochs = len(json.loads(Path(dirname, "history.json").read_text()))
    except (OSError, ValueError):
        epochs = 0
    return (
        f"training was interrupted; checkpoint_dir {dirname} keeps the {epochs} whole "
        "epochs before it: fit again with the same checkpoint_dir (the same command) to resume"
    )


def upgrade_optimizer_state(optimizer, state: dict, module: torch.nn.Module) -> dict:
    """An optimizer state saved before the unused bond norm went, mapped onto today's.

    A checkpoint written by an older skdim (``optimizer.pt``) counts the
    parameters of the last attention block's bond normalization, which today's
    module no longer has (see :func:`skdim.nn.attention.legacy_parameter_names`):
    the saved parameter indices are renumbered and those entries dropped (they
    never had a gradient, so no optimizer statistics). A state that already
    fits, or that does not match the old layout either, is returned as it is.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer about to load ``state``.
    state : dict
        The saved ``state_dict()``.
    module : torch.nn.Module
        The module whose parameters the optimizer updates.

    Returns
    -------
    dict
        The state to load.
    """
    groups = optimizer.param_groups
    saved = state.get("param_groups", [])
    if len(saved) != len(groups) or all(
        len(old["params"]) == len(new["params"]) for old, new in zip(saved, groups)
    ):
        return state
    names = {id(p): name for name, p in module.named_parameters()}
    legacy = legacy_parameter_names(module)
    position = {name: i for i, name in enumerate(legacy)}
    current = {name for name, _ in module.named_parameters()}
    mapping = {}  # saved index -> index today
    new_index = 0
    for old, new in zip(saved, groups):
        group_names = [names.get(id(p)) for p in new["params"]]
        if None in group_names:  # a parameter outside the module (a criterion's)
            return state
        # today's names of the group, with the dropped ones back in the old order
        first, last = position[group_names[0]], position[group_names[-1]]
        old_names = [n for n in legacy[first : last + 1] if n in group_names or n not in current]
        if len(old_names) != len(old["params"]):
            return state
        for index, name in zip(old["params"], old_names):
            if name in current:
                mapping[index] = new_index
                new_index += 1
    upgraded = dict(state)
    upgraded["param_groups"] = [
        {**old, "params": [mapping[i] for i in old["params"] if i in mapping]} for old in saved
    ]
    upgraded["state"] = {mapping[i]: v for i, v in state["state"].items() if i in mapping}
    return upgraded
