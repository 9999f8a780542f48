"""Thread policy: idle cores only, torch's setting restored, OMP_NUM_THREADS obeyed."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST

import skdim._threads as threads
from skdim import DIMPretrainer, SiteNetRegressor
from skdim._threads import idle_threads, thread_count_is_invisible, thread_policy


def _cpu() -> tuple[str, list[str]]:
    """The CPU's vendor and its AVX-512 flags, from /proc/cpuinfo ("" and [] where absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", []
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    avx512 = sorted(f for f in (flags.group(1).split() if flags else ()) if f.startswith("avx512"))
    return (vendor.group(1) if vendor else ""), avx512


def bits_unverified() -> str | None:
    """Why a fit is not checked for the same bits on 1 and 2 threads here; None where it is.

    Verified on an AMD EPYC without AVX-512, with torch's AVX2 and default
    kernels and MKL in the mode skdim selects. Other CPUs run other kernels
    (AVX-512 ones in torch, MKL and torch.compile's code): on an Intel Xeon
    with AVX512-FP16, DIM embeddings from 1 and 2 threads differed by up to
    2.3e-6.
    """
    if not thread_count_is_invisible():
        return "MKL's products vary with the thread count here (not in its strict mode)"
    if os.environ.get("MKL_CBWR") != "AUTO,STRICT":
        return f"MKL_CBWR={os.environ.get('MKL_CBWR')}, not the AUTO,STRICT that skdim selects"
    vendor, avx512 = _cpu()
    capability = torch.backends.cpu.get_cpu_capability()
    if vendor != "AuthenticAMD" or avx512 or capability not in ("AVX2", "DEFAULT"):
        return (
            "bitwise identity is verified only on AMD CPUs without AVX-512 with torch's AVX2 or "
            f"default kernels; this CPU: {vendor or 'vendor unknown'}, torch kernels "
            f"{capability}, {' '.join(avx512[:4]) or 'no AVX-512'}"
        )
    return None


def assert_thread_invariant(result: np.ndarray, reference: np.ndarray) -> None:
    """Equal to ~1e-5 everywhere, and to the last bit where that is verified (bits_unverified)."""
    scale = float(np.abs(reference).max())
    np.testing.assert_allclose(result, reference, rtol=1e-5, atol=1e-5 * scale)
    reason = bits_unverified()
    if reason is not None:
        pytest.skip(f"agree to 1e-5 on 1 and 2 threads; bits not compared: {reason}")
    np.testing.assert_array_equal(result, reference)


def test_idle_threads_counts_what_others_leave():
    assert idle_threads(load=0.0, cores=4) == 4
    assert idle_threads(load=2.2, cores=4) == 2
    assert idle_threads(own_threads=2, load=2.1, cores=2) == 2  # only our own load
    assert idle_threads(load=8.0, cores=2) == 1  # never fewer than one


def test_policy_sets_and_restores_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "idle_threads", lambda own_threads=0: 1)
    monkeypatch.setattr(threads, "thread_count_is_invisible", lambda: True)
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
    monkeypatch.setattr(threads, "thread_count_is_invisible", lambda: True)
    structures, labels = small
    before = torch.get_num_threads()
    model = SiteNetRegressor(**FAST).fit(structures, labels["e_form_per_atom"])
    assert model.history[:, "threads"] == [1] * FAST["max_epochs"]
    assert torch.get_num_threads() == before


def test_blas_runs_in_its_reproducible_mode():
    assert thread_count_is_invisible()


#: Run with MKL_CBWR=COMPATIBLE: do products of Site-Net's shapes vary with the
#: thread count, and does the probe see it?
_COMPATIBLE_MODE = """
import functools, itertools, json, torch
from skdim._threads import thread_count_is_invisible
draw = functools.partial(torch.randn, generator=torch.Generator().manual_seed(1))
varies = False
for rows, inner, cols in itertools.product([6, 64, 819, 4000], [8, 64, 128, 680], [1, 64, 136]):
    x, w = draw(rows, inner), draw(inner, cols)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results.append(x @ w)
    varies = varies or not torch.equal(*results)
print(json.dumps({"varies": varies, "probe": thread_count_is_invisible()}))
"""


def test_the_probe_sees_mkl_outside_its_strict_mode():
    # in MKL's compatible mode products of tens to hundreds of rows varied with
    # the thread count while the probe's first (few-row) product did not
    if not torch.backends.mkl.is_available():
        pytest.skip("torch is not built with MKL")
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE"}
    run = subprocess.run(
        [sys.executable, "-c", _COMPATIBLE_MODE], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    if not found["varies"]:
        pytest.skip("in MKL's compatible mode no product tried varies with threads here")
    assert found["probe"] is False


def test_threads_follow_torch_where_the_blas_is_not_reproducible(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "idle_threads", lambda own_threads=0: 1)
    monkeypatch.setattr(threads, "thread_count_is_invisible", lambda: False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with thread_policy():
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("estimator", [DIMPretrainer, SiteNetRegressor])
def test_the_model_does_not_depend_on_the_thread_count(mp100, monkeypatch, estimator):
    # mp100 includes a 136-site crystal: wide reductions that threads would split
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the test sets the count itself
    structures, labels = mp100
    y = labels["e_form_per_atom"].to_numpy()
    before = torch.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = estimator(**{**FAST, "max_epochs": 3, "batch_pairs": 20000})
            model.fit(structures, y)
            torch.set_num_threads(1)
            outputs.append(
                model.transform(structures)
                if estimator is DIMPretrainer
                else model.predict(structures)
            )
    finally:
        torch.set_num_threads(before)
    for output in outputs[1:]:
        assert_thread_invariant(output, outputs[0])


@pytest.mark.parametrize("scale", [1.0, 3.0, 30.0])
def test_softplus_does_not_depend_on_the_thread_count(scale):
    # torch's own softplus differs in the last bit between 1 and 2 threads
    # above 32,768 elements; the DIM loss applies it to (3, B, P, 16) scores
    from skdim.nn.layers import softplus

    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            x = scale * torch.randn(3, 17, 43, 16, generator=torch.Generator().manual_seed(0))
            x.requires_grad_(True)
            y = softplus(x)
            (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
            results.append((y.detach(), x.grad))
    finally:
        torch.set_num_threads(before)
    for y, grad in results[1:]:
        assert torch.equal(y, results[0][0])
        assert torch.equal(grad, results[0][1])


def test_pretraining_on_demo_batches_does_not_depend_on_the_thread_count(demo3k, monkeypatch):
    # the demo's batches (up to 50 atoms, ~17 crystals of 42 sites) give DIM
    # loss tensors above torch's parallel grain, where mp100's do not
    from skdim.featurize import featurize

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the test sets the count itself
    inputs = featurize(demo3k[0].iloc[:600], max_atoms=50)
    before = torch.get_num_threads()
    embeddings = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = DIMPretrainer(
                max_epochs=1, lr_schedule="constant", engineered_negatives=False, verbose=0,
                random_state=0,
            )  # fmt: skip
            embeddings.append(model.fit(inputs).transform(inputs[:50]))
    finally:
        torch.set_num_threads(before)
    assert_thread_invariant(embeddings[1], embeddings[0])
