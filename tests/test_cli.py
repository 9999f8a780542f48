import pandas as pd

from skdim.cli import main


def test_pretrain_embed_fit_predict(data_home, tmp_path, capsys):
    csv = str(data_home / "mp100.csv.gz")
    folder = str(data_home / "cod_cif10")
    fast = ["--max-epochs", "1", "--batch-pairs", "20000"]
    assert main(["pretrain", folder, "--out", str(tmp_path / "dim"), *fast]) == 0
    assert main(["embed", str(tmp_path / "dim"), csv, "--out", str(tmp_path / "emb.csv")]) == 0
    embeddings = pd.read_csv(tmp_path / "emb.csv", index_col=0)
    assert embeddings.shape == (100, 128) and embeddings.index[0] == "mp-10114"
    args = ["fit", csv, "--target", "e_form_per_atom", "--out", str(tmp_path / "reg"), *fast]
    assert main([*args, "--pretrained", str(tmp_path / "dim")]) == 0
    assert main(["predict", str(tmp_path / "reg"), folder, "--out", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert list(predictions.columns) == ["prediction"] and len(predictions) == 10


def test_clear_errors(data_home, tmp_path, capsys):
    assert main(["embed", str(tmp_path / "none"), str(data_home / "cod_cif10"), "--out", "x"]) == 2
    assert "not a saved skdim model" in capsys.readouterr().err
    csv = str(data_home / "mp100.csv.gz")
    assert main(["fit", csv, "--out", str(tmp_path / "r"), "--max-epochs", "1"]) == 2
    assert "no targets" in capsys.readouterr().err


def test_quiet(data_home, tmp_path, capsys):
    folder = str(data_home / "cod_cif10")
    out = str(tmp_path / "dim")
    assert main(["pretrain", folder, "--out", out, "--max-epochs", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"saved DIM pretrainer to {out}\n" and captured.err == ""
