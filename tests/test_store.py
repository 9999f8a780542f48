"""The sharded on-disk store: exact round trip, resuming, and training from it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import FAST, ROOT
from torch.utils.data import DataLoader

from skdim.data import collate_sitenet, feature_scaling
from skdim.featurize import featurize
from skdim.store import FeaturizedStore, featurize_to_store, iter_csv_texts


def assert_same_input(a, b):
    for name in ("atomic_numbers", "site_features", "pair_features", "neighbor_site"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.n_images == b.n_images


def shard_files(path):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in path.glob("shard-*")}


@pytest.fixture(scope="module")
def structures(small):
    return list(small[0])


@pytest.fixture(scope="module")
def store(structures, tmp_path_factory):
    return featurize_to_store(structures, tmp_path_factory.mktemp("s") / "store", shard_size=8)


def test_items_equal_in_memory_featurization(structures, tmp_path):
    inputs = [*structures[:10], "not a CIF file", *structures[10:]]
    store = featurize_to_store(inputs, tmp_path / "store", shard_size=8)
    reference = featurize(structures)
    assert len(store) == len(structures) == len(reference)
    assert list(store.skipped.index) == [10] and "could not parse" in store.skipped[10]
    assert list(store.source_index) == [i for i in range(len(inputs)) if i != 10]
    for i, x in enumerate(reference):
        item, target = store[i]
        assert_same_input(item, x) and target is None
    np.testing.assert_array_equal(store.n_sites, [x.n_sites for x in reference])
    np.testing.assert_array_equal(store.n_neighbors, [x.n_neighbors for x in reference])
    expected = feature_scaling(reference)
    for name, value in store.feature_scaling().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5)


def test_failed_cell_reduction_is_skipped_not_fatal(structures, tmp_path, monkeypatch):
    """A structure whose featurization fails (e.g. Niggli reduction) is skipped, with why."""
    import skdim._shards

    def featurize_structure(structure, **settings):
        if structure is structures[3]:
            raise RuntimeError("Niggli reduction did not converge")
        return featurize([structure], **settings)[0]

    monkeypatch.setattr(skdim._shards, "featurize_structure", featurize_structure)
    store = featurize_to_store(structures[:6], tmp_path / "store", shard_size=4)
    assert len(store) == 5 and list(store.source_index) == [0, 1, 2, 4, 5]
    assert store.skipped[3] == "RuntimeError: Niggli reduction did not converge"
    with pytest.raises(RuntimeError, match="Niggli"):
        featurize_to_store(structures[:6], tmp_path / "raise", on_error="raise")


def test_cif_texts_are_streamed_and_parsed_in_workers(data_home, mp100, tmp_path):
    texts = iter_csv_texts(data_home / "mp100.csv.gz", nrows=30)
    store = featurize_to_store(texts, tmp_path / "store", shard_size=7, n_jobs=2)
    reference = featurize(list(mp100[0].iloc[:30]))
    assert len(store) == 30 and store.featurization["max_atoms"] == 50
    for i in (0, 13, 29):
        assert_same_input(store[i][0], reference[i])


def test_dask_backend_featurizes_on_a_cluster(data_home, tmp_path):
    """The cluster recipe of docs/scaling.rst, on an in-process Dask cluster."""
    pytest.importorskip("distributed")
    import joblib
    from dask.distributed import Client, LocalCluster

    texts = iter_csv_texts(data_home / "mp100.csv.gz", nrows=24)
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with cluster, Client(cluster), joblib.parallel_config(backend="dask"):
        store = featurize_to_store(texts, tmp_path / "store", shard_size=5, n_jobs=-1)
    assert len(store) == 24 and len(list(store.path.glob("shard-*.npz"))) == 5


def test_interrupted_run_resumes_without_touching_finished_shards(structures, store, tmp_path):
    def stream():
        for i, s in enumerate(structures):
            if i == 20:
                raise RuntimeError("interrupted")
            yield s

    path = tmp_path / "store"
    with pytest.raises(RuntimeError, match="interrupted"):
        featurize_to_store(stream(), path, shard_size=8)
    with pytest.raises(ValueError, match="incomplete"):
        FeaturizedStore(path)
    finished = shard_files(path)
    assert sorted(finished) == [f"shard-0000{k}.{e}" for k in (0, 1) for e in ("bin", "npz")]
    (path / "shard-00002.bin.tmp").write_bytes(b"half a shard")
    resumed = featurize_to_store(structures, path, shard_size=8)
    assert {k: v for k, v in shard_files(path).items() if k in finished} == finished
    assert not list(path.glob("*.tmp")) and len(shard_files(path)) == 10
    for i in range(len(store)):
        assert_same_input(resumed[i][0], store[i][0])


def test_killed_process_resumes(structures, tmp_path):
    """SIGKILL in the middle of featurization, then rerun: finished shards stay as they are."""
    path = tmp_path / "store"
    code = (
        "import time, sys; from skdim.datasets import load_structures_csv; "
        "from skdim.store import featurize_to_store\n"
        "X, _ = load_structures_csv(sys.argv[1])\n"
        "def slow():\n"
        "    for s in X.iloc[:40]:\n"
        "        time.sleep(0.1); yield s\n"
        "featurize_to_store(slow(), sys.argv[2], shard_size=4)\n"
    )
    data = os.environ["SKDIM_DATA"] + "/mp100.csv.gz"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", code, data, str(path)], env=env)
    deadline = time.monotonic() + 60
    while len(list(path.glob("*.npz"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {k: v for k, v in shard_files(path).items() if k.endswith(".npz")}
    assert 2 <= len(finished) < 10
    from skdim.datasets import load_structures_csv

    X, _ = load_structures_csv(data)
    store = featurize_to_store(list(X.iloc[:40]), path, shard_size=4)
    assert {k: v for k, v in shard_files(path).items() if k in finished} == finished
    assert len(store) == 40


def test_other_settings_do_not_resume(structures, store):
    with pytest.raises(ValueError, match="holds a store"):
        featurize_to_store(structures, store.path, shard_size=8, max_atoms=20)
    with pytest.raises(ValueError, match="holds a store"):
        featurize_to_store(structures, store.path, shard_size=16)
    assert featurize_to_store(structures, store.path, shard_size=8).path == store.path
    with pytest.raises(ValueError, match="complete store of another input"):
        featurize_to_store([], store.path, shard_size=8)


def test_pickles_and_loads_in_worker_processes(store):
    copy = pickle.loads(pickle.dumps(store))
    assert_same_input(copy[5][0], store[5][0])
    loader = DataLoader(store, batch_size=8, num_workers=2, collate_fn=collate_sitenet)
    assert sum(len(batch["site_mask"]) for batch, _ in loader) == len(store)


def test_pretrainer_trains_and_embeds_from_the_store_as_from_memory(store, fitted_pretrainer):
    """Same seed, same structures: fit(store) == fit(structures) (the session fixture)."""
    from skdim import DIMPretrainer

    from_store = DIMPretrainer(**store.featurization, **FAST).fit(store)
    np.testing.assert_allclose(
        from_store.feature_scaling_["pair_std"], fitted_pretrainer.feature_scaling_["pair_std"]
    )
    embeddings = from_store.transform(store)
    assert embeddings.shape == (len(store), 128)
    expected = fitted_pretrainer.transform(store)
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
    inputs = [store[i][0] for i in range(len(store))]
    np.testing.assert_allclose(from_store.transform(inputs), embeddings, rtol=1e-5, atol=1e-6)


def test_command_line_featurize(data_home, tmp_path, capsys):
    from skdim.cli import main

    args = ["featurize", str(data_home / "mp100.csv.gz"), "--out", str(tmp_path / "s")]
    assert main([*args, "--shard-size", "40"]) == 0
    assert "100 structures" in capsys.readouterr().out
    assert len(FeaturizedStore(tmp_path / "s")) == 100 and len(shard_files(tmp_path / "s")) == 6


def test_estimator_settings_must_match_the_store(store):
    from skdim import DIMPretrainer

    with pytest.raises(ValueError, match=r"Estimator\(\*\*store.featurization\)"):
        DIMPretrainer(max_atoms=20).get_dataset(store)
    assert DIMPretrainer(**store.featurization).get_dataset(store) is store
