"""Saving and loading fitted estimators: ``weights.pt`` plus ``config.json``.

The weights are a plain state dict read back with ``torch.load(...,
weights_only=True)`` and mapped to the requested device, so a model trained on
a GPU loads on a CPU-only machine. ``config.json`` records the estimator class,
its parameters, its fitted settings and the skdim version; a file written in
another artifact format is refused with a clear message.

Classes in ``config.json`` (the estimator, its module, criterion, optimizer
...) are written as ``{"__import__": "module:name"}``. Loading resolves them
against an allow-list of skdim's own classes and the few torch and skorch
classes skdim writes (:func:`allowed_references`), never by importing what the
file names: a config that names anything else is refused with a ValueError
before anything is imported or called. Classes of your own (a custom loss)
can be allowed with :func:`add_safe_classes`.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from skdim._version import __version__
from skdim.nn.losses import REGRESSION_LOSSES

FORMAT_VERSION = 1
_OMIT = object()
_IMPORT = "__import__"
#: Public names of the classes skdim itself writes to ``config.json``.
_SAFE_NAMES = (
    "skdim.pretrainer:DIMPretrainer",
    "skdim.regressor:SiteNetRegressor",
    "skdim.classifier:SiteNetClassifier",
    "skdim.nn:SiteNet",
    "skdim.nn:SiteNetDIM",
    "skdim.nn:DIMLoss",
    "torch.nn:CrossEntropyLoss",
    "torch.utils.data:DataLoader",
    "skorch.dataset:Dataset",
    *(
        f"torch.optim:{name}"
        for name in ("AdamW", "Adam", "SGD", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam")
    ),
)
#: Classes (or functions) allowed by :func:`add_safe_classes`.
_EXTRA_SAFE: list[Any] = []


def _reference(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def add_safe_classes(classes: Iterable[type]) -> None:
    """Allow more classes in the ``config.json`` of models you load.

    Only needed for a model saved with a class or function of your own as a
    parameter (e.g. ``criterion=MyLoss``); load only files you trust with it.

    Parameters
    ----------
    classes : iterable of type or function
        Classes (or functions) that :meth:`~skdim.DIMPretrainer.load` may
        then use.

    Examples
    --------
    >>> import torch
    >>> from skdim.persistence import add_safe_classes, allowed_references
    >>> add_safe_classes([torch.nn.SmoothL1Loss])
    >>> "torch.nn.modules.loss:SmoothL1Loss" in allowed_references()
    True
    """
    for cls in classes:
        if not callable(cls) or not hasattr(cls, "__qualname__"):
            raise TypeError(f"add_safe_classes takes classes or functions, got {cls!r}")
        _EXTRA_SAFE.append(cls)


def allowed_references() -> dict[str, type]:
    """The classes a ``config.json`` may name, by ``"module:name"`` reference.

    Returns
    -------
    dict of str to type
        Both the public name (``"torch.optim:AdamW"``) and the defining
        module's name (``"torch.optim.adamw:AdamW"``, as written) of each
        class: skdim's estimators, SiteNet, SiteNetDIM, DIMLoss, the
        regression losses, CrossEntropyLoss, torch's common optimizers,
        DataLoader, skorch's Dataset, and any given to
        :func:`add_safe_classes`.
    """
    import importlib

    allowed: dict[str, type] = {}
    for name in _SAFE_NAMES:  # fixed names of trusted modules, not read from a file
        module, _, attribute = name.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        allowed[name] = allowed[_reference(cls)] = cls
    for cls in [*REGRESSION_LOSSES.values(), *_EXTRA_SAFE]:
        allowed[_reference(cls)] = cls
        if getattr(torch.nn, cls.__name__, None) is cls:
            allowed[f"torch.nn:{cls.__name__}"] = cls
    return allowed


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return _OMIT if any(v is _OMIT for v in items) else items
    if isinstance(value, dict):
        items = {str(k): _encode(v) for k, v in value.items()}
        return _OMIT if any(v is _OMIT for v in items.values()) else items
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return {_IMPORT: _reference(value)}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return value.item()
    return _OMIT


def _references(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    """(key, reference) of every ``{"__import__": ...}`` entry in ``value``."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _references(item, f"{key}[{i}]")
    elif isinstance(value, dict):
        if _IMPORT in value:
            yield key, value[_IMPORT] if set(value) == {_IMPORT} else value
        else:
            for name, item in value.items():
                yield from _references(item, f"{key}.{name}")


def _check_references(config: dict, where: str) -> dict[str, type]:
    """The allow-list, after checking that every class the config names is on it."""
    allowed = allowed_references()
    found = [("estimator", config["estimator"])]
    found += _references(config["params"], "params")
    found += _references(config["fitted"], "fitted")
    for key, reference in found:
        if not isinstance(reference, str) or reference not in allowed:
            raise ValueError(
                f"{where}: {key} refers to {reference!r}, which is not a class skdim loads; "
                "refused (nothing was imported or called). Only skdim's own classes and the "
                "torch/skorch classes skdim writes are allowed; for a file you trust that "
                "names a class of your own, see skdim.persistence.add_safe_classes."
            )
    if not _is_estimator(allowed[config["estimator"]]):
        raise ValueError(f"{where}: estimator {config['estimator']!r} is not a skdim estimator")
    load_kwargs = config["params"].get("torch_load_kwargs")
    if load_kwargs is not None and (
        not isinstance(load_kwargs, dict) or load_kwargs.get("weights_only", True) is not True
    ):
        raise ValueError(
            f"{where}: params.torch_load_kwargs={load_kwargs!r} is refused; checkpoints "
            "are loaded with weights_only=True"
        )
    return allowed


def _is_estimator(cls: Any) -> bool:
    """Whether ``cls`` is a skdim estimator class (one that saves and restores its fitted state).

    Checked by the methods of ``skdim._base.SiteNetMixin`` rather than by importing
    it: the estimators import this module, not the other way round.
    """
    return isinstance(cls, type) and all(
        callable(getattr(cls, name, None)) for name in ("_fitted_state", "_restore_fitted")
    )


def _decode(value: Any, allowed: dict[str, type]) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, allowed) for v in value)
    if isinstance(value, dict):
        if set(value) == {_IMPORT}:
            return allowed[value[_IMPORT]]  # checked by _check_references
        return {k: _decode(v, allowed) for k, v in value.items()}
    return value


def save_estimator(estimator: Any, path: str | Path) -> None:
    """Write a fitted estimator to the directory ``path`` (created if needed)."""
    estimator.check_is_fitted()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params, omitted = {}, []
    for name, value in estimator.get_params(deep=False).items():
        encoded = _encode(value)
        if encoded is _OMIT:
            omitted.append(name)
        else:
            params[name] = encoded
    config = {
        "format_version": FORMAT_VERSION,
        "skdim_version": __version__,
        "estimator": f"{type(estimator).__module__}:{type(estimator).__qualname__}",
        "params": params,
        "omitted_params": omitted,
        "fitted": _encode(estimator._fitted_state()),
    }
    state = {k: v.detach().cpu() for k, v in estimator.module_.state_dict().items()}
    # each file under a temporary name, renamed once whole: a failed save
    # (a full disk) never leaves an empty weights.pt
    temporary = path / "weights.pt.partial"
    try:
        torch.save(state, temporary)
        temporary.replace(path / "weights.pt")
        temporary = path / "config.json.partial"
        temporary.write_text(json.dumps(config, indent=2))
        temporary.replace(path / "config.json")
    finally:
        temporary.unlink(missing_ok=True)


def read_config(path: str | Path) -> dict:
    """The ``config.json`` of a saved model, after checking its format version.

    Parameters
    ----------
    path : str or Path
        The model directory.

    Returns
    -------
    dict
        The parsed ``config.json``; classes are still ``{"__import__": ...}``
        entries (nothing is imported).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or is not a folder holding ``config.json``
        and ``weights.pt``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: no saved skdim model there")
    if not (path / "config.json").is_file() or not (path / "weights.pt").is_file():
        raise FileNotFoundError(
            f"{path} is not a saved skdim model (a folder with config.json and weights.pt)"
        )
    try:
        config = json.loads((path / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"config.json in {path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"config.json in {path} is not a skdim model config")
    found = config.get("format_version")
    if found != FORMAT_VERSION:
        raise ValueError(
            f"{path} was saved by skdim {config.get('skdim_version', '?')} in model format "
            f"{found}; this skdim {__version__} reads format {FORMAT_VERSION}. Load it with "
            "the skdim version that saved it, or retrain."
        )
    expected = {"estimator": str, "params": dict, "fitted": dict}
    for key, kind in expected.items():
        if not isinstance(config.get(key), kind):
            raise ValueError(
                f"config.json in {path} is not a skdim model config: {key!r} is missing "
                f"or not a {kind.__name__}"
            )
    return config


def load_state_dict(path: str | Path, device: Any) -> dict[str, torch.Tensor]:
    """The saved weights, mapped to ``device``, loaded with weights_only=True.

    Parameters
    ----------
    path : str or Path
        The model directory.
    device : str or torch.device
        Where to map the tensors.

    Returns
    -------
    dict of str to torch.Tensor
        The state dict.

    Raises
    ------
    ValueError
        If ``weights.pt`` is truncated, is not a torch file, or holds anything
        but tensors (objects are never unpickled).
    """
    file = Path(path) / "weights.pt"
    try:
        state = torch.load(file, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        detail = unpickling_detail(error)
        if "global" in detail.lower():  # a class or function: never unpickled
            raise ValueError(
                f"weights.pt in {Path(path)} holds objects other than tensors; refused "
                f"(weights are loaded with weights_only=True): {detail}"
            ) from None
        raise _not_weights(path, pickle.UnpicklingError(detail)) from None
    except (EOFError, KeyError, IndexError, TypeError, ValueError, RuntimeError, OSError) as error:
        raise _not_weights(path, error) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"weights.pt in {Path(path)} is not a state dict of tensors")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"weights.pt in {Path(path)} holds NaN or infinite values in {name}: the "
                "model diverged before it was saved, or the file was altered"
            )
    return state


def unpickling_detail(error: pickle.UnpicklingError) -> str:
    """What torch's weights_only unpickler refused, without its advice to turn it off.

    Parameters
    ----------
    error : pickle.UnpicklingError
        Raised by ``torch.load(..., weights_only=True)``.

    Returns
    -------
    str
        The line naming the refused global, or the unpickler's own error,
        else "?".
    """
    lines = [line.strip() for line in str(error).splitlines()]
    for line in lines:
        if "global" in line.lower() and "weights_only" not in line:
            return line
    detail = str(error).rpartition("WeightsUnpickler error:")[2].strip()
    return detail.splitlines()[0] if detail else "?"


def _not_weights(path: str | Path, error: BaseException) -> ValueError:
    return ValueError(
        f"weights.pt in {Path(path)} is truncated or not a skdim weights file "
        f"({type(error).__name__}: {error!s:.200})"
    )


def _load_device(requested: Any, saved: Any) -> Any:
    device = requested if requested is not None else saved
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"model was saved for {device}; no GPU here, loading on cpu", stacklevel=3)
        device = "cpu"
    return device


def load_estimator(path: str | Path, device: Any = None, expected: type | None = None) -> Any:
    """Rebuild an estimator saved by :func:`save_estimator`.

    Parameters
    ----------
    path : str or Path
        The model directory.
    device : str or None, default=None
        Device to load onto; None uses the saved one (the CPU when it is a
        GPU and none is available).
    expected : type or None, default=None
        Refuse a model of another class (TypeError).

    Returns
    -------
    estimator
        The fitted estimator.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or is not a saved skdim model.
    ValueError
        If ``config.json`` names a class that is not allowed (see
        :func:`allowed_references`; checked before anything is imported or
        called), or ``weights.pt`` is damaged or does not fit the model.
    """
    config = read_config(path)
    allowed = _check_references(config, f"config.json in {Path(path)}")
    cls = allowed[config["estimator"]]
    if expected is not None and not issubclass(cls, expected):
        raise TypeError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    params = {k: _decode(v, allowed) for k, v in config["params"].items()}
    params["device"] = _load_device(device, params.get("device"))
    estimator = cls(**params)
    estimator._restore_fitted(_decode(config["fitted"], allowed))
    estimator.initialize()
    state = load_state_dict(path, params["device"])
    try:
        estimator.module_.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"weights in {path} do not fit the saved architecture: {error}") from None
    return estimator
