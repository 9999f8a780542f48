"""Weights and checkpoints written before the last block's unused bond norm was removed."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import FAST
from skorch.callbacks import Callback

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.featurize import featurize
from skdim.nn import SiteNetEncoder, encoder_config
from skdim.nn.attention import LEGACY_PAIR_NORM, legacy_parameter_names


@pytest.fixture(scope="module")
def inputs(small):
    structures, labels = small
    return featurize(structures[:24]), labels["e_form_per_atom"].to_numpy()[:24]


def old_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict as an older skdim wrote it: with the last block's bond norm."""
    state = module.state_dict()
    old = {}
    for name, value in state.items():
        old[name] = value
        prefix = name.removesuffix("first_norms.1.bias")
        if prefix != name and not module.get_submodule(prefix.rstrip(".")).update_pairs:
            old[prefix + LEGACY_PAIR_NORM[0]] = torch.full_like(value, 1.5)
            old[prefix + LEGACY_PAIR_NORM[1]] = torch.full_like(value, -0.5)
    return old


def old_optimizer_state(state: dict, module: torch.nn.Module) -> dict:
    """An optimizer state as an older skdim wrote it (two more parameters, renumbered)."""
    legacy = legacy_parameter_names(module)
    names = [name for name, _ in module.named_parameters()]
    renumber = {i: legacy.index(name) for i, name in enumerate(names)}
    groups = [{**g, "params": list(range(len(legacy)))} for g in state["param_groups"]]
    assert len(groups) == 1
    return {"state": {renumber[i]: v for i, v in state["state"].items()}, "param_groups": groups}


def test_last_block_has_no_unused_parameters():
    encoder = SiteNetEncoder(4, 3, **encoder_config("dim"))
    *others, last = encoder.blocks
    assert all(block.update_pairs for block in others) and not last.update_pairs
    assert len(last.first_norms) == 2
    x = {
        "site_features": torch.randn(2, 3, 4),
        "pair_features": torch.rand(2, 3, 5, 3),
        "neighbor_site": torch.randint(0, 3, (2, 5)),
        "pair_mask": torch.ones(2, 3, 5, dtype=torch.bool),
        "site_mask": torch.ones(2, 3, dtype=torch.bool),
        "atomic_numbers": torch.randint(1, 50, (2, 3)),
    }
    out = encoder(**x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    unused = [name for name, p in encoder.named_parameters() if p.grad is None]
    assert unused == []


def test_state_dict_with_the_old_key_loads():
    encoder = SiteNetEncoder(4, 3, **encoder_config("dim"))
    old = old_state_dict(encoder)
    assert len(old) == len(encoder.state_dict()) + 2
    fresh = SiteNetEncoder(4, 3, **encoder_config("dim"))
    fresh.load_state_dict(old, strict=True)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in encoder.state_dict().items())
    assert len(old) == len(encoder.state_dict()) + 2  # the caller's dict is left alone


def test_saved_model_with_the_old_key_loads(inputs, tmp_path):
    X, _ = inputs
    model = DIMPretrainer(**FAST).fit(X)
    model.save(tmp_path / "dim")
    torch.save(old_state_dict(model.module_), tmp_path / "dim" / "weights.pt")
    loaded = DIMPretrainer.load(tmp_path / "dim")
    assert torch.equal(torch.as_tensor(loaded.transform(X)), torch.as_tensor(model.transform(X)))
    regressor = SiteNetRegressor(**FAST, pretrained=tmp_path / "dim").fit(X, inputs[1])
    assert regressor.predict(X).shape == (len(X),)


class Interrupt(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 1:
            raise KeyboardInterrupt


def test_checkpoint_with_the_old_keys_resumes(inputs, tmp_path):
    """A run checkpointed by an older skdim resumes exactly as one checkpointed today."""
    X, _ = inputs
    options = {**FAST, "max_epochs": 3}
    new, old = tmp_path / "new", tmp_path / "old"
    interrupted = DIMPretrainer(**options, checkpoint_dir=str(new), callbacks=[("i", Interrupt())])
    interrupted.fit(X)
    shutil.copytree(new, old)
    module, optimizer = interrupted.module_, interrupted.optimizer_
    torch.save(old_state_dict(module), old / "params.pt")
    saved = torch.load(new / "optimizer.pt", weights_only=True)
    torch.save(old_optimizer_state(saved, module), old / "optimizer.pt")
    with pytest.raises(ValueError):  # torch alone refuses it: the upgrade is what loads it
        type(optimizer)(module.parameters()).load_state_dict(torch.load(old / "optimizer.pt"))

    resumed_new = DIMPretrainer(**options, checkpoint_dir=str(new)).fit(X)
    resumed_old = DIMPretrainer(**options, checkpoint_dir=str(old)).fit(X)
    assert len(resumed_old.history) == 3
    expected, found = resumed_new.module_.state_dict(), resumed_old.module_.state_dict()
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert resumed_old.history[:, "train_loss"] == resumed_new.history[:, "train_loss"]
