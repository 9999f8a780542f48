"""Pretrained encoders shipped inside the package: list, verify, load.

Each shipped model is a directory ``skdim/models/<name>/`` written by
:meth:`DIMPretrainer.save` (``weights.pt`` and ``config.json``) plus
``card.json``, the facts of its model card (data, exclusions, settings,
training cost). ``skdim/models/registry.json`` holds the sha256 of every file;
loading verifies them, so a truncated or altered file is refused before it is
read. Nothing is downloaded.

Wherever skdim accepts the directory of a saved model
(``SiteNetRegressor(pretrained=...)``, ``SiteNetClassifier``,
``DIMFeaturizer``, the command line's ``--pretrained``), the name of a shipped
model is accepted too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["list_pretrained", "load_pretrained", "pretrained_path", "register_pretrained"]

#: Where the shipped models live.
MODELS_DIR = Path(__file__).resolve().parent / "models"
_FILES = ("config.json", "weights.pt", "card.json")


def _registry(models_dir: Path) -> dict:
    path = models_dir / "registry.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_pretrained(models_dir: str | Path | None = None) -> list[str]:
    """Names of the pretrained encoders that ship with skdim.

    Parameters
    ----------
    models_dir : path or None, default=None
        Directory of the registry; None is the package's own.

    Returns
    -------
    list of str
        Sorted names, for :func:`load_pretrained`.

    Examples
    --------
    >>> import skdim
    >>> names = skdim.list_pretrained()
    >>> all(isinstance(name, str) for name in names)
    True
    """
    return sorted(_registry(Path(models_dir or MODELS_DIR)))


def pretrained_path(name: str, models_dir: str | Path | None = None) -> Path:
    """Directory of a shipped model, after checking every file's sha256.

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained`.
    models_dir : path or None, default=None
        Directory of the registry; None is the package's own.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a file
        whose checksum differs from the registry's.
    FileNotFoundError
        When a file of the model is missing.

    Examples
    --------
    >>> from skdim.pretrained import pretrained_path
    >>> pretrained_path("no-such-model")
    Traceback (most recent call last):
    ...
    ValueError: no pretrained model named 'no-such-model'; shipped models: ...
    """
    models_dir = Path(models_dir or MODELS_DIR)
    registry = _registry(models_dir)
    if name not in registry:
        raise ValueError(
            f"no pretrained model named {name!r}; shipped models: {sorted(registry) or 'none'}"
        )
    folder = models_dir / name
    for file, expected in registry[name]["sha256"].items():
        path = folder / file
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained model {name!r} is incomplete: {path} is missing; reinstall skdim"
            )
        if _sha256(path) != expected:
            raise ValueError(
                f"pretrained model {name!r}: {path} does not match its sha256 in the registry "
                "(altered or damaged); reinstall skdim"
            )
    return folder


def load_pretrained(name: str, device: str | None = None, models_dir: str | Path | None = None):
    """A fitted :class:`~skdim.DIMPretrainer` from a shipped, verified model.

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained`.
    device : str or None, default=None
        Device to load onto; None means the CPU.
    models_dir : path or None, default=None
        Directory of the registry; None is the package's own.

    Returns
    -------
    DIMPretrainer
        Ready to ``transform``; its ``pretrained_info_`` dict holds the model
        card's facts (``n_structures``, data set and fold, exclusions,
        featurization, epochs, wall time, hardware, skdim version) and the
        ``sha256`` of its weights.

    Examples
    --------
    Load every shipped encoder by name (the list is empty while none ships):

    >>> import skdim
    >>> encoders = {name: skdim.load_pretrained(name) for name in skdim.list_pretrained()}
    >>> all(dim.pretrained_info_["name"] == name for name, dim in encoders.items())
    True

    A name that does not ship is refused, with the names that do:

    >>> skdim.load_pretrained("no-such-encoder")
    Traceback (most recent call last):
    ...
    ValueError: no pretrained model named 'no-such-encoder'; shipped models: ...
    """
    from skdim.pretrainer import DIMPretrainer

    folder = pretrained_path(name, models_dir)
    model = DIMPretrainer.load(folder, device=device or "cpu")
    card = json.loads((folder / "card.json").read_text())
    sha256 = _registry(Path(models_dir or MODELS_DIR))[name]["sha256"]["weights.pt"]
    model.pretrained_info_ = {"name": name, **card, "sha256": sha256}
    return model


def resolve_saved_model(pretrained: Any) -> Any:
    """A shipped model's verified directory for its name; anything else unchanged.

    An existing path wins over a shipped name of the same spelling.
    """
    if isinstance(pretrained, str) and not Path(pretrained).exists():
        if pretrained in list_pretrained():
            return pretrained_path(pretrained)
    return pretrained


def register_pretrained(
    source: str | Path, name: str, card: dict, models_dir: str | Path | None = None
) -> Path:
    """Copy a saved model into the registry with its card and checksums.

    Parameters
    ----------
    source : path
        Directory written by ``DIMPretrainer.save``.
    name : str
        Name to ship it under.
    card : dict
        JSON-safe model card facts (see :func:`load_pretrained`).
    models_dir : path or None, default=None
        Directory of the registry; None is the package's own.

    Returns
    -------
    pathlib.Path
        The model's directory in the registry.

    Examples
    --------
    How ``benchmarks/pretrain_encoder.py --export`` ships a model:

    >>> from skdim.pretrained import register_pretrained
    >>> register_pretrained("dim_model", "my-encoder", {"n_structures": 79223})  # doctest: +SKIP
    PosixPath('.../skdim/models/my-encoder')
    """
    models_dir = Path(models_dir or MODELS_DIR)
    folder = models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", "weights.pt"):
        shutil.copyfile(Path(source) / file, folder / file)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    registry = _registry(models_dir)
    registry[name] = {"sha256": {file: _sha256(folder / file) for file in _FILES}}
    (models_dir / "registry.json").write_text(json.dumps(registry, indent=2) + "\n")
    return folder
