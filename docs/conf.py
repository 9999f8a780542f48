"""Sphinx configuration of the skdim documentation.

Build with ``make docs`` from the project root. The example gallery runs
every ``examples/plot_*.py`` script on the Materials Project demo set, read
from ``$SKDIM_DATA`` (default: ``../shared/data`` beside the project root).
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # import skdim from the source tree if it is not installed
sys.path.insert(0, str(DOCS))  # helper modules of the docs (figures/)
os.environ.setdefault("SKDIM_DATA", str(ROOT.parent / "shared" / "data"))
os.environ.setdefault("MPLBACKEND", "Agg")

import skdim  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skdim"
author = "The skdim developers"
copyright = "The skdim developers"
release = skdim.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    "myst_parser",  # only for the benchmark reports, which are Markdown files
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "generated_includes"]
templates_path = ["_templates"]
default_role = "literal"
pygments_style = "sphinx"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections carry the types
autodoc_member_order = "groupwise"
# Class pages list the members that skdim defines (including those inherited
# from skdim's own mixins); members of skorch, scikit-learn, torch and matminer
# base classes are documented by those projects (see _skip_foreign_members).
autodoc_default_options = {}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Skip class members defined outside skdim, and NamedTuple field properties."""
    if type(obj).__name__ == "_tuplegetter":  # the Attributes section documents them
        return True
    if what == "class" and (inspect.ismethoddescriptor(obj) or inspect.isbuiltin(obj)):
        return True  # tuple.count and the like
    module = getattr(obj, "__module__", None)
    if what == "class" and isinstance(module, str) and not module.startswith("skdim"):
        return True
    return None


# -- Example gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|demo)\.py",  # demo.py is the README demo (10 minutes)
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skdim",),
    "reference_url": {"skdim": None},
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 0,
    "matplotlib_animations": False,
}

# -- matplotlib plot directive (user guide figures) ----------------------------
plot_basedir = str(DOCS)  # paths in ".. plot::" are relative to docs/
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"savefig.bbox": "tight"}

# -- Markdown (benchmark reports only) -----------------------------------------
myst_enable_extensions = []
myst_heading_anchors = 3
# The reports are written by the benchmark scripts, not for Sphinx: links to
# scripts, skipped heading levels and the like are not worth failing the build.
suppress_warnings = ["myst"]

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdim {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # code blocks wrap instead of hiding their ends
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_show_sourcelink = False


# -- Benchmark results ---------------------------------------------------------
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_COPY = DOCS / "benchmark_reports"  # generated, ignored by git
RESULTS_INDEX = DOCS / "generated_includes" / "benchmark_results.rst"


def copy_benchmark_results() -> None:
    """Copy ``benchmarks/results/*.{md,png,csv}`` into the docs, and list them.

    The results are produced by the benchmark scripts, possibly after this
    page was written, so nothing here assumes that any file exists: the page
    says so when there are none. Every Markdown report becomes a page, with
    its figures (:func:`_figures_of`) appended unless it shows them already;
    other figures and the CSV tables are listed on the benchmarks page.
    """
    if RESULTS_COPY.exists():
        shutil.rmtree(RESULTS_COPY)
    RESULTS_INDEX.parent.mkdir(exist_ok=True)
    files = sorted(RESULTS.glob("*")) if RESULTS.is_dir() else []
    reports = sorted((f for f in files if f.suffix == ".md"), key=_report_order)
    figures = [f for f in files if f.suffix == ".png"]
    tables = [f for f in files if f.suffix == ".csv"]
    if files:
        RESULTS_COPY.mkdir()
        for f in figures + tables:
            shutil.copy2(f, RESULTS_COPY / f.name)
    shown = set()
    for report in reports:
        text = report.read_text(errors="replace")
        own = [f for f in _figures_of(report, figures) if f.name not in text]
        if own:
            text += "\n## Figures\n" + "".join(f"\n![{f.stem}]({f.name})\n" for f in own)
        (RESULTS_COPY / report.name).write_text(text)
        shown.update(f.name for f in figures if f.name in text)
    lines = []
    if not reports and not figures:
        lines += [
            ".. note::",
            "",
            "   No benchmark results in ``benchmarks/results/`` yet: run the scripts",
            "   above, then rebuild the documentation.",
            "",
        ]
    if reports:
        lines += [".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   benchmark_reports/{f.stem}" for f in reports] + [""]
    for f in figures:
        if f.name in shown:
            continue
        lines += [
            f".. figure:: /benchmark_reports/{f.name}",
            "   :width: 90%",
            f"   :alt: {f.stem.replace('_', ' ')}",
            "",
            f"   ``benchmarks/results/{f.name}``",
            "",
        ]
    if tables:
        lines += ["Raw tables:", ""]
        lines += [f"- :download:`{f.name} </benchmark_reports/{f.name}>`" for f in tables] + [""]
    text = "\n".join(lines) + "\n"
    if not RESULTS_INDEX.exists() or RESULTS_INDEX.read_text() != text:
        RESULTS_INDEX.write_text(text)


def _figures_of(report: Path, figures: list[Path]) -> list[Path]:
    """Figures of a report: ``<report>*.png``; for a label-masking report
    (``label_masking.md`` for the full profile, ``label_masking_<profile>.md``
    otherwise) its curve plot and its t-SNE maps ``tsne_<task>_<profile>.png``.
    """
    if not report.stem.startswith("label_masking"):
        return [f for f in figures if f.stem.startswith(report.stem)]
    profile = report.stem.removeprefix("label_masking").lstrip("_") or "full"
    return [
        f
        for f in figures
        if f.stem == report.stem or (f.stem.startswith("tsne_") and f.stem.endswith("_" + profile))
    ]


def _report_order(report: Path) -> tuple[int, str]:
    """Reports in the order of the benchmarks page's table; unknown ones last."""
    order = [
        "featurize",
        "nn",
        "scale",
        "label_masking",
        "recipe_study",
        "calibration",
        "finetune_study",
    ]
    rank = next((i for i, name in enumerate(order) if report.stem.startswith(name)), len(order))
    return rank, report.stem


def scaling_toctree() -> None:
    """List the scaling guide (``scaling.rst``, written separately) when it exists."""
    entry = ["", ".. toctree::", "   :maxdepth: 1", "   :hidden:", "", "   scaling", ""]
    text = "\n".join(entry if (DOCS / "scaling.rst").exists() else [""]) + "\n"
    target = DOCS / "generated_includes" / "scaling_toctree.rst"
    target.parent.mkdir(exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def presets_table() -> None:
    """Table of the encoder presets, read from skdim.nn.PRESETS (always in sync)."""
    from skdim.nn import PRESETS

    names = list(PRESETS)
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - setting"]
    lines += [f'     - ``"{name}"``' for name in names]
    for key in PRESETS[names[0]]:
        lines.append(f"   * - ``{key}``")
        lines += [f"     - ``{PRESETS[name][key]!r}``" for name in names]
    target = DOCS / "generated_includes" / "presets.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(lines) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


#: Optional API sections: (module, title, public names), listed when importable.
SCALING_API = [
    (
        "skdim.store",
        "on-disk featurized data",
        ["FeaturizedStore", "featurize_to_store", "iter_csv_texts"],
    ),
    (
        "skdim.distributed",
        "multi-GPU pretraining",
        ["DistributedDIMPretrainer", "make_accelerator"],
    ),
]


def api_scaling() -> None:
    """API sections of the scaling modules (written separately), if they exist."""
    import importlib.util

    lines = []
    for module, title, names in SCALING_API:
        if importlib.util.find_spec(module) is None:
            continue
        heading = f":mod:`{module}`: {title}"
        lines += [heading, "-" * len(heading), "", f".. automodule:: {module}", ""]
        lines += [f".. currentmodule:: {module}", ""]
        for name in names:
            kind = "autoclass" if name[0].isupper() else "autofunction"
            lines += [f".. {kind}:: {name}"]
            if kind == "autoclass":
                lines += ["   :members:", "   :inherited-members:", "   :show-inheritance:"]
            lines += [""]
    target = DOCS / "generated_includes" / "api_scaling.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(lines) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


copy_benchmark_results()  # before Sphinx collects the source files
api_scaling()
scaling_toctree()
presets_table()


def setup(app):
    """Register the hooks of this configuration."""
    app.connect("autodoc-skip-member", _skip_foreign_members)
