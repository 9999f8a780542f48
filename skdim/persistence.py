"""Saving and loading fitted estimators: ``weights.pt`` plus ``config.json``.

The weights are a plain state dict read back with ``torch.load(...,
weights_only=True)`` and mapped to the requested device, so a model trained on
a GPU loads on a CPU-only machine. ``config.json`` records the estimator class,
its parameters, its fitted settings and the skdim version; a file written in
another artifact format is refused with a clear message.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
_OMIT = object()


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
        return {"__import__": f"{value.__module__}:{value.__qualname__}"}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return value.item()
    return _OMIT


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if set(value) == {"__import__"}:
            module, _, name = value["__import__"].partition(":")
            obj = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
            return obj
        return {k: _decode(v) for k, v in value.items()}
    return value


def save_estimator(estimator: Any, path: str | Path) -> None:
    """Write a fitted estimator to the directory ``path`` (created if needed)."""
    from skdim import __version__

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
    torch.save(state, path / "weights.pt")
    (path / "config.json").write_text(json.dumps(config, indent=2))


def read_config(path: str | Path) -> dict:
    """The ``config.json`` of a saved model, after checking its format version."""
    from skdim import __version__

    path = Path(path)
    if not (path / "config.json").is_file() or not (path / "weights.pt").is_file():
        raise FileNotFoundError(f"{path} is not a saved skdim model (config.json, weights.pt)")
    config = json.loads((path / "config.json").read_text())
    found = config.get("format_version")
    if found != FORMAT_VERSION:
        raise ValueError(
            f"{path} was saved by skdim {config.get('skdim_version', '?')} in model format "
            f"{found}; this skdim {__version__} reads format {FORMAT_VERSION}. Load it with "
            "the skdim version that saved it, or retrain."
        )
    return config


def load_state_dict(path: str | Path, device: Any) -> dict[str, torch.Tensor]:
    """The saved weights, mapped to ``device``, loaded with weights_only=True."""
    return torch.load(Path(path) / "weights.pt", map_location=device, weights_only=True)


def _load_device(requested: Any, saved: Any) -> Any:
    device = requested if requested is not None else saved
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"model was saved for {device}; no GPU here, loading on cpu", stacklevel=3)
        device = "cpu"
    return device


def load_estimator(path: str | Path, device: Any = None, expected: type | None = None) -> Any:
    """Rebuild an estimator saved by :func:`save_estimator`."""
    config = read_config(path)
    cls = _decode({"__import__": config["estimator"]})
    if expected is not None and not issubclass(cls, expected):
        raise TypeError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    params = {k: _decode(v) for k, v in config["params"].items()}
    params["device"] = _load_device(device, params.get("device"))
    estimator = cls(**params)
    estimator._restore_fitted(_decode(config["fitted"]))
    estimator.initialize()
    try:
        estimator.module_.load_state_dict(load_state_dict(path, params["device"]), strict=True)
    except RuntimeError as error:
        raise ValueError(f"weights in {path} do not fit the saved architecture: {error}") from None
    return estimator
