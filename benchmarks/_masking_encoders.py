"""Encoders the label-masking benchmark's arms start from, and what each cost.

* the **protocol DIM** model: pretrained per task on that task's training
  fold only (the split's pretraining set), without labels, with
  ``DIMPretrainer``'s default plateau schedule under a ``max_epochs`` cap;
* the **shipped** encoder: a name of ``skdim.list_pretrained()`` or a folder
  saved by ``DIMPretrainer.save``; its pretraining is paid once, by whoever
  ships it (the model card's ``wall_time_s``);
* the **transfer** source: a Site-Net trained on the *other* task's labels
  (``benchmarks/transfer_source.py``), with the target's test structures left out;
* the **untrained** encoder: the initial weights, a control for the others.
"""

from __future__ import annotations

import json
from pathlib import Path


def protocol_dim(
    task: str, inputs: dict, split: dict, max_epochs: int, cache: Path, suffix: str = ""
) -> tuple[Path, dict]:
    """Folder of the task's protocol DIM model, and its cost.

    Pretrains (without labels, engineered negatives off for CPU cost) unless
    ``<task>_dim<suffix>`` is cached; an interrupted run resumes from its
    checkpoints. The cost is kept in ``<task>_pretrain<suffix>.json``.

    Parameters
    ----------
    task : str
        The task (names the cache files).
    inputs : dict
        Site-Net inputs by id.
    split : dict
        The split; its ``pretrain`` ids are pretrained on.
    max_epochs : int
        Cap on the epochs; the plateau schedule usually stops earlier.
    cache : Path
        The profile's cache folder.
    suffix : str, default=""
        Distinguishes further models of one task.

    Returns
    -------
    folder : Path
        The saved ``DIMPretrainer``.
    cost : dict
        ``seconds`` (summed epoch durations, across resumed runs),
        ``structures``, ``epochs`` (run), ``max_epochs`` and ``stopped``
        (whether the plateau schedule ended the run before the cap).
    """
    from skdim import DIMPretrainer

    model_dir = cache / f"{task}_dim{suffix}"
    cost_path = cache / f"{task}_pretrain{suffix}.json"
    if not (model_dir / "config.json").exists():
        pretrain = [inputs[i] for i in split["pretrain"] if i in inputs]
        model = DIMPretrainer(
            max_epochs=max_epochs,
            engineered_negatives=False,
            random_state=0,
            verbose=1,
            checkpoint_dir=str(cache / f"{task}_dim{suffix}_checkpoints"),
        ).fit(pretrain)
        model.save(model_dir)
        history = model.history
        cost = {
            "seconds": float(sum(history[:, "dur"])),
            "structures": len(pretrain),
            "epochs": len(history),
            "max_epochs": max_epochs,
            "stopped": bool(history[-1].get("stopped", False)),
        }
        cost_path.write_text(json.dumps(cost))
    return model_dir, json.loads(cost_path.read_text())


def untrained_encoder(inputs: list):
    """A ``DIMPretrainer`` with its initial weights (one epoch at learning rate 0)."""
    from skdim import DIMPretrainer

    return DIMPretrainer(
        max_epochs=1, lr=0.0, lr_schedule="constant", random_state=0, verbose=0
    ).fit(inputs[:50])


def checkpoint_encoder(folder: Path, inputs: list):
    """A ``DIMPretrainer`` holding the weights of a pretraining checkpoint folder's last epoch."""
    import torch

    model = untrained_encoder(inputs)  # builds the network; the checkpoint's weights replace it
    state = torch.load(Path(folder) / "params.pt", map_location="cpu", weights_only=True)
    model.module_.load_state_dict(state)
    return model


def shipped_encoder(spec: str | None) -> tuple[Path | None, dict]:
    """The shipped encoder's folder and its model card facts, or None with the reason.

    Parameters
    ----------
    spec : str or None
        A name of ``skdim.list_pretrained()`` or a folder written by
        ``DIMPretrainer.save``; None takes the first shipped name; ``"none"``
        (or an empty string) asks for no shipped encoder.

    Returns
    -------
    folder : Path or None
        None when there is no encoder: the shipped arms are skipped.
    info : dict
        ``name``, ``wall_time_s`` (the card's, else None), ``n_structures``,
        ``dataset``, ``fold``, ``exclusions`` where the card has them; or
        ``skipped`` with the reason.

    Raises
    ------
    ValueError
        For a spec that is neither a folder nor a shipped name.
    """
    from skdim.pretrained import list_pretrained, pretrained_path

    names = list_pretrained()
    if spec is None:
        if not names:
            return None, {
                "skipped": "no shipped encoder (skdim.list_pretrained() is empty) and no "
                "--shipped NAME_OR_DIR: the shipped arms are skipped"
            }
        spec = names[0]
    if spec.lower() in ("", "none"):
        return None, {"skipped": "--shipped none: the shipped arms are skipped"}
    if Path(spec).is_dir():
        folder, name = Path(spec), str(spec)
    elif spec in names:
        folder, name = pretrained_path(spec), spec
    else:
        raise ValueError(
            f"--shipped {spec!r} is neither a folder nor a shipped name ({names or 'none'})"
        )
    card_path = folder / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    keys = ("n_structures", "dataset", "fold", "exclusions", "epochs", "hardware")
    return folder, {
        "name": name,
        "wall_time_s": card.get("wall_time_s"),
        **{key: card[key] for key in keys if key in card},
    }


def transfer_encoder(
    task: str,
    data: Path,
    cache: Path,
    test_ids: list[str],
    max_structures: int | None,
    max_steps: int | None,
    n_jobs: int,
) -> tuple[Path | None, dict]:
    """Folder of a Site-Net trained on the other task's labels, or None with the reason.

    ``benchmarks/transfer_source.py`` trains it (cached there), leaving out
    every source structure that is one of ``test_ids``.

    Parameters
    ----------
    task : str
        The target task.
    data : Path
        The data folder.
    cache : Path
        The profile's cache folder.
    test_ids : list of str
        The target's test ids.
    max_structures : int or None
        Most source structures (None: all).
    max_steps : int or None
        Training budget (None: the library's default recipe).
    n_jobs : int
        Processes for featurizing.

    Returns
    -------
    folder : Path or None
        A saved ``SiteNetRegressor`` (``SiteNetRegressor(pretrained=folder)``).
    cost : dict
        The source's cost (``seconds``, ``n_structures``, ``n_excluded``...),
        or ``skipped`` with the reason.
    """
    try:
        from transfer_source import transfer_source
    except ImportError as error:  # benchmarks/transfer_source.py is not there yet
        return None, {"skipped": f"transfer arm skipped ({error})"}
    folder, cost = transfer_source(
        task,
        data,
        cache,
        list(test_ids),
        max_structures=max_structures,
        max_steps=max_steps,
        n_jobs=n_jobs,
    )
    cost = dict(cost)
    if "seconds" not in cost:  # the parts it reports: selection, featurization, fit
        parts = [cost[k] for k in ("select_s", "featurize_s", "fit_s") if k in cost]
        cost["seconds"] = float(sum(parts)) if parts else None
    return Path(folder), cost
