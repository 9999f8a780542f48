"""The command line: commands on real data, help, errors, ids, --quiet, classifiers."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from skdim._version import __version__
from skdim.cli import build_parser, main

FAST = ["--max-epochs", "1", "--batch-pairs", "20000"]
COMMANDS = ["pretrain", "featurize", "embed", "fit", "predict", "benchmark"]


@pytest.fixture(scope="module")
def models(data_home, tmp_path_factory):
    """A DIM model pretrained on a CIF folder and a regressor fitted from it (not quiet)."""
    work = tmp_path_factory.mktemp("cli")
    csv, folder = str(data_home / "mp100.csv.gz"), str(data_home / "cod_cif10")
    dim, reg = str(work / "dim"), str(work / "reg")
    assert main(["pretrain", folder, "--out", dim, *FAST]) == 0
    fit = ["fit", csv, "--target", "e_form_per_atom", "--pretrained", dim, "--out", reg]
    assert main([*fit, *FAST]) == 0
    return SimpleNamespace(csv=csv, folder=folder, dim=dim, reg=reg)


@pytest.fixture(scope="module")
def classifier(mp100, tmp_path_factory):
    """A SiteNetClassifier (metal or insulator) saved as the Python API saves it."""
    from skdim import SiteNetClassifier

    structures, labels = mp100
    classes = np.where(labels["band_gap"] > 0, "insulator", "metal")
    path = tmp_path_factory.mktemp("clf") / "clf"
    model = SiteNetClassifier(max_epochs=1, batch_pairs=20000, random_state=0, verbose=0)
    model.fit(structures, classes).save(path)
    return path


def test_embed_and_predict(models, tmp_path):
    assert main(["embed", models.dim, models.csv, "--out", str(tmp_path / "emb.csv")]) == 0
    embeddings = pd.read_csv(tmp_path / "emb.csv", index_col=0)
    assert embeddings.shape == (100, 128) and embeddings.index[0] == "mp-10114"
    out = str(tmp_path / "p.csv")
    assert main(["predict", models.reg, models.folder, "--out", out, "--quiet"]) == 0
    predictions = pd.read_csv(out, index_col=0)
    assert list(predictions.columns) == ["prediction"] and len(predictions) == 10


def test_folder_ids_are_file_names_without_extension(models, tmp_path):
    """The same folder gives the same ids with and without its id_prop.csv."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for cif in Path(models.folder).glob("*.cif"):
        shutil.copy(cif, bare / cif.name)
    ids = {}
    for name, folder in (("with", models.folder), ("without", str(bare))):
        out = str(tmp_path / f"{name}.csv")
        assert main(["predict", models.reg, folder, "--out", out, "--quiet"]) == 0
        ids[name] = pd.read_csv(out, index_col=0, dtype={0: str}).index
    assert "1000041" in ids["with"] and sorted(ids["with"]) == sorted(ids["without"])


def test_quiet_is_honoured_by_models_saved_without_it(models, tmp_path, capsys):
    capsys.readouterr()
    out = str(tmp_path / "p.csv")
    assert main(["predict", models.reg, models.csv, "--out", out]) == 0
    assert "featurize" in capsys.readouterr().err  # saved with progress bars: shown
    assert main(["predict", models.reg, models.csv, "--out", out, "--quiet"]) == 0
    assert capsys.readouterr() == (f"wrote 100 predictions to {out}\n", "")
    out = str(tmp_path / "emb.csv")
    assert main(["embed", models.dim, models.folder, "--out", out, "--quiet"]) == 0
    assert capsys.readouterr() == (f"wrote 10 embeddings of width 128 to {out}\n", "")


def test_quiet_pretrain(data_home, tmp_path, capsys):
    folder = str(data_home / "cod_cif10")
    out = str(tmp_path / "dim")
    assert main(["pretrain", folder, "--out", out, "--max-epochs", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"saved DIM pretrainer to {out}\n" and captured.err == ""


def test_predict_with_a_classifier(classifier, data_home, tmp_path, capsys):
    out = tmp_path / "classes.csv"
    assert main(["predict", str(classifier), str(data_home / "cod_cif10"), "--out", str(out)]) == 0
    table = pd.read_csv(out, index_col=0)
    columns = ["prediction", "probability_insulator", "probability_metal"]
    assert list(table.columns) == columns and len(table) == 10
    probabilities = table[columns[1:]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    expected = np.array(["insulator", "metal"])[probabilities.argmax(axis=1)]
    assert (table["prediction"].to_numpy() == expected).all()
    assert "predicted classes" in capsys.readouterr().out
    args = ["predict", str(classifier), str(data_home / "cod_cif10"), "--out", str(out), "--std"]
    assert main(args) == 2
    assert "--std is for regressors" in capsys.readouterr().err


def test_clear_errors(models, data_home, tmp_path, capsys):
    csv, folder = models.csv, models.folder
    assert main(["embed", str(tmp_path / "none"), folder, "--out", "x"]) == 2
    assert f"{tmp_path / 'none'} does not exist" in capsys.readouterr().err
    assert main(["embed", str(tmp_path), folder, "--out", "x"]) == 2  # a folder, no model
    assert "not a saved skdim model" in capsys.readouterr().err
    fit = ["fit", csv, "--out", str(tmp_path / "r"), "--max-epochs", "1", "--quiet"]
    assert main(fit) == 2  # no --target: say which columns could be
    err = capsys.readouterr().err
    assert "no targets: pass --target" in err and "e_form_per_atom, band_gap" in err
    assert main([*fit, "--target", "gap"]) == 2  # a missing column: named, with the others
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'gap'" in err and "e_form_per_atom, band_gap" in err
    assert main(["fit", folder, "--target", "gap", *fit[2:]]) == 2  # a folder has id_prop.csv
    assert "come from its id_prop.csv: drop --target" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(data_home / "cod_cif10" / "1000041.cif", bare)
    assert main(["fit", str(bare), *fit[2:]]) == 2
    assert "has no id_prop.csv" in capsys.readouterr().err
    assert main(["predict", models.dim, folder, "--out", str(tmp_path / "p.csv")]) == 2
    assert "holds a DIMPretrainer" in capsys.readouterr().err


def test_fit_without_target_lists_numeric_label_columns_only(data_home, tmp_path, capsys):
    fit = ["--out", str(tmp_path / "r"), "--quiet"]
    assert main(["fit", str(data_home / "mp100.csv.gz"), *fit]) == 2
    err = capsys.readouterr().err  # columns: id, mp_id, e_form_per_atom, band_gap, cif
    assert err.rstrip().endswith(
        "label columns of " + str(data_home / "mp100.csv.gz") + ": e_form_per_atom, band_gap"
    ), err
    assert "mp_id" not in err
    table = pd.read_csv(data_home / "mp100.csv.gz", nrows=5)
    table["formula"] = ["NaCl", "Fe", "Si", "GaAs", "MgO"]  # text: not a label
    table = table.rename(columns={"mp_id": "matbench_id"})
    table.to_csv(tmp_path / "labelled.csv", index=False)
    assert main(["fit", str(tmp_path / "labelled.csv"), *fit]) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith(": e_form_per_atom, band_gap"), err
    assert main(["fit", str(tmp_path / "labelled.csv"), "--target", "gap", *fit]) == 2
    err = capsys.readouterr().err  # a missing column: the same candidates
    assert "its label columns are e_form_per_atom, band_gap" in err, err


def test_fit_refuses_a_folder_without_labels_before_parsing(mp100, tmp_path, capsys, monkeypatch):
    import skdim.datasets

    structures, _ = mp100
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in structures.index[:2]:
        structures[name].to(filename=str(folder / f"{name}.cif"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.cif" for name in structures.index[:2]
    )

    def parse(*args, **kwargs):
        raise AssertionError("structures parsed before the labels were checked")

    monkeypatch.setattr(skdim.datasets, "load_structure_folder", parse)
    monkeypatch.setattr(skdim.datasets, "parse_structures", parse)
    assert main(["fit", str(folder), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"the folder {folder} has no id_prop.csv" in err and err.count("\n") == 1, err


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_shows_defaults_and_describes_every_argument(capsys):
    texts = {name: _help([name, "--help"], capsys) for name in COMMANDS}
    texts["skdim"] = _help(["--help"], capsys)
    assert all("`" not in text for text in texts.values())
    assert "--max-atoms MAX_ATOMS" in texts["pretrain"] and "(default: 50)" in texts["pretrain"]
    assert "(default: 100)" in texts["pretrain"] and "(default: plateau)" in texts["pretrain"]
    assert "(default: auto)" in texts["fit"] and "(default: cosine)" in texts["fit"]
    assert "(default: None)" not in "".join(texts.values())
    assert "example:" in texts["skdim"] and "COMMAND --help" in texts["skdim"]
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    subcommands["benchmark"].parse_known_args([])  # adds the script's options
    assert len(subcommands["benchmark"]._actions) > 5
    for name, sub in subcommands.items():
        for action in sub._actions:
            assert action.help, f"skdim {name} {action.dest} has no help"


def test_version(capsys):
    assert _help(["--version"], capsys) == f"skdim {__version__}\n"


def test_help_and_version_import_neither_torch_nor_pymatgen():
    code = (
        "import sys\n"
        "from skdim.cli import main\n"
        "for argv in (['--help'], ['--version'], ['fit', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    if argv[0] != 'fit':\n"
        "        heavy = {'torch', 'skorch', 'pymatgen.core', 'pandas'} & set(sys.modules)\n"
        "        print(argv[0], sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "--help []" in result.stdout and "--version []" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "command", ["pretrain", "featurize", "embed", "fit", "predict", "benchmark"]
)
def test_help_shows_no_default_for_switches(command, capsys):
    from skdim.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: True)" not in text and "(default: False)" not in text
    if command == "fit":
        assert "auto: 6 per labelled structure" in text  # the rule of auto_steps


def test_fit_prints_few_whole_lines(data_home, tmp_path, capsys):
    """``skdim fit`` into a file or a pipe: whole lines, about one a tenth of the run."""
    out, folder = str(tmp_path / "reg"), str(data_home / "cod_cif10")  # 10 CIF files
    argv = ["fit", folder, "--out", out, "--max-epochs", "30", "--batch-pairs", "20000"]
    assert main([*argv, "--max-atoms", "20"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\r" not in text and "\x1b" not in text and "\u2588" not in text  # no bar
    lines = text.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert 5 <= len(steps) <= 10 and len(lines) <= len(steps) + 6, text
    assert all(re.match(r"step [\d,]+/[\d,]+  epoch \d+/30 ", line) for line in steps), text
    assert steps[-1].endswith("done") and captured.out.endswith(f"saved regressor to {out}\n")


def test_verbose_levels_of_the_command_line():
    from skdim.cli import _common

    def level(*flags: str) -> int:
        return _common(build_parser().parse_args(["fit", "DATA", "--out", "M", *flags]))["verbose"]

    assert (level(), level("-v"), level("-vv"), level("-vvv"), level("--quiet")) == (1, 2, 3, 3, 0)
