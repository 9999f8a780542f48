"""The label-masking benchmark's curve plot and its report-only mode (benchmarks/)."""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _masking_plots as plots  # noqa: E402 (scripts of benchmarks/, not of the package)
import _masking_rows as rows_file  # noqa: E402
import label_masking as benchmark  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _rows(cells: dict, task: str = "eform") -> pd.DataFrame:
    """Rows from {(n, arm): median}: 5 seeds spread by +-0.02 around the median."""
    offsets = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])
    return pd.DataFrame(
        [
            (rows_file.PROTOCOL, task, n, seed, arm, median + offsets[seed], 1.0, 0.1)
            for (n, arm), median in cells.items()
            for seed in range(5)
        ],
        columns=rows_file.COLUMNS,
    )


def test_each_feature_table_is_its_best_model_at_each_n():
    rows = _rows(
        {
            (50, "dim_rf"): 0.60,
            (50, "dim_ridge"): 0.55,  # ridge best at N=50
            (250, "dim_rf"): 0.40,  # the forest best at N=250
            (250, "dim_ridge"): 0.45,
            (50, "sitenet_dim"): 0.50,
            (250, "sitenet_dim"): 0.30,
            (50, "xrd_rf"): 0.90,
            (50, "mean"): 1.00,
        }
    )
    curves = plots.curves(rows)
    assert list(curves) == ["sitenet_dim", "dim"]  # XRD and the mean: not curves
    dim = curves["dim"]
    assert list(dim["model"]) == ["ridge", "rf"]
    assert dim.loc[50, "median"] == pytest.approx(0.55)
    assert dim.loc[250, "median"] == pytest.approx(0.40)
    assert dim.loc[250, "low"] == pytest.approx(0.39) and dim.loc[250, "high"] == pytest.approx(
        0.41
    )
    assert curves["sitenet_dim"].loc[250, "median"] == pytest.approx(0.30)


def test_curve_plot_keeps_a_far_mean_out_of_the_curves_range(tmp_path, monkeypatch):
    rows = pd.concat(
        [
            _rows({(50, "sitenet_dim"): 0.5, (250, "sitenet_dim"): 0.3, (50, "mean"): 1.0}),
            _rows({(50, "input_stats_rf"): 0.9, (250, "input_stats_rf"): 0.8}, task="gap"),
            _rows({(50, "mean"): 0.93}, task="gap"),  # near the curves: in the panel
        ]
    )
    import matplotlib.figure

    saved = {}
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, path, **kw: saved.update(fig=fig)
    )
    plots.curve_plot(rows, tmp_path / "curves.png")
    fig = saved["fig"]
    gap_strip, gap_panel, eform_strip, eform_panel = fig.axes  # a strip above each panel
    # formation energy: the mean (1.0) is far above the curves (0.28-0.52): in the strip
    assert eform_strip.get_visible() and eform_panel.get_ylim()[1] < 0.6
    assert eform_strip.get_ylim()[0] < 1.0 < eform_strip.get_ylim()[1]
    assert eform_strip.get_title() == "Formation energy"
    # band gap: the mean (0.93) is near the curves (0.78-0.92): drawn in the panel
    assert not gap_strip.get_visible() and gap_panel.get_ylim()[1] >= 0.93
    assert gap_panel.get_title() == "Band gap"
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "mean predictor 1.00 eV/atom" in texts and "mean predictor 0.93 eV" in texts
    [legend] = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["Site-Net fine-tuned from DIM", "pooled input site features"]
    bottom = min(ax.get_position().y0 for ax in fig.axes)
    assert legend.get_window_extent().y1 <= bottom * fig.bbox.height  # below the panels


def test_report_mode_rewrites_the_report_from_the_rows_alone(tmp_path, capsys):
    rows = _rows({(50, "sitenet_dim"): 0.5, (50, "input_stats_rf"): 0.45, (50, "mean"): 1.0})
    rows.to_csv(tmp_path / "label_masking.csv", index=False)
    earlier = "Protocol 2. Machine: x86_64, 64 cores, 2020-01-01  "
    (tmp_path / "label_masking.md").write_text(f"# old\n\n{earlier}\nold text\n")
    argv = ["--full", "--report", "--out-dir", str(tmp_path), "--data-dir", "/nonexistent"]
    benchmark.main(argv)  # no data read, nothing fitted
    text = (tmp_path / "label_masking.md").read_text()
    assert (tmp_path / "label_masking.png").is_file()
    line = next(x for x in text.splitlines() if x.startswith("Protocol 2. Machine:"))
    assert line.startswith("Protocol 2. Machine: x86_64, 64 cores, 2020-01-01 (the last run); ")
    assert "report rewritten from the rows file on" in line
    assert "| Site-Net fine-tuned from DIM | 0.500 [0.490-0.510] |" in text
    benchmark.main(argv)  # rewritten again: the last run's line is kept, not repeated
    again = (tmp_path / "label_masking.md").read_text()
    assert again.count("(the last run)") == 1 and again == text
    with pytest.raises(FileNotFoundError, match="no rows file label_masking_quick.csv"):
        benchmark.main(["--quick", "--report", "--out-dir", str(tmp_path)])


def test_the_committed_report_matches_its_rows(tmp_path):
    """benchmarks/results/label_masking.md is what --report writes from the committed rows."""
    for name in ("label_masking.csv", "cost_gap_full.json", "cost_eform_full.json"):
        (tmp_path / name).write_bytes((RESULTS / name).read_bytes())
    benchmark.main(["--full", "--report", "--no-plots", "--out-dir", str(tmp_path)])
    committed = (RESULTS / "label_masking.md").read_text().splitlines()
    written = (tmp_path / "label_masking.md").read_text().splitlines()
    machine = re.compile(r"^Protocol \d+\. Machine: .*$")  # the run's machine and dates
    assert [machine.sub("", x) for x in written] == [machine.sub("", x) for x in committed]
