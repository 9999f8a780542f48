"""Thread policy: idle cores only, torch's setting restored, OMP_NUM_THREADS obeyed."""

import torch
from conftest import FAST

import skdim._threads as threads
from skdim import SiteNetRegressor
from skdim._threads import idle_threads, thread_policy


def test_idle_threads_counts_what_others_leave():
    assert idle_threads(load=0.0, cores=4) == 4
    assert idle_threads(load=2.2, cores=4) == 2
    assert idle_threads(own_threads=2, load=2.1, cores=2) == 2  # only our own load
    assert idle_threads(load=8.0, cores=2) == 1  # never fewer than one


def test_policy_sets_and_restores_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "idle_threads", lambda own_threads=0: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with thread_policy():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_omp_num_threads_is_obeyed(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "idle_threads", lambda own_threads=0: 1)
    before = torch.get_num_threads()
    with thread_policy():
        assert torch.get_num_threads() == before


def test_fit_uses_the_policy_each_epoch(small, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "idle_threads", lambda own_threads=0: 1)
    structures, labels = small
    before = torch.get_num_threads()
    model = SiteNetRegressor(**FAST).fit(structures, labels["e_form_per_atom"])
    assert model.history[:, "threads"] == [1] * FAST["max_epochs"]
    assert torch.get_num_threads() == before
