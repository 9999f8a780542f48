"""Docstring examples run, and public objects have the numpydoc sections they need.

The doctests of every module of skdim, and of the user guide pages, run here
(the default test run), so an example that stops working fails the suite.
Examples that would train a model, or read a large file, are marked
``# doctest: +SKIP`` in the docstring itself. The data files come from
``$SKDIM_DATA`` (tests/conftest.py sets the default).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import skdim

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Modules that need an optional dependency, imported only when it is installed.
OPTIONAL = {"skdim.distributed": "accelerate"}
#: Modules whose import has side effects (``python -m skdim`` runs the CLI).
NOT_IMPORTED = {"skdim.__main__"}


def _modules() -> list[str]:
    names = [skdim.__name__]
    for info in pkgutil.walk_packages(skdim.__path__, prefix="skdim."):
        if info.name not in NOT_IMPORTED:
            names.append(info.name)
    return sorted(names)


def _run_doctests(tests: list[doctest.DocTest]) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for test in tests:
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=True)
        if result.failed:
            report.append("".join(out))
    assert not report, "\n".join(report)


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name, data_home):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    # only tests defined in this module: re-exported objects are tested at home
    own = [t for t in tests if t.filename is None or Path(t.filename) == Path(module.__file__)]
    _run_doctests(own)


#: Documentation pages with examples (``>>>``); generated pages are left out.
PAGES = sorted(
    p
    for p in (ROOT / "docs").rglob("*.rst")
    if ">>>" in p.read_text() and not {"_build", "auto_examples", "api"} & set(p.parts)
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "docs")))
def test_docs_page_doctests(page, data_home):
    text = page.read_text()
    parser = doctest.DocTestParser()
    _run_doctests([parser.get_doctest(text, {}, page.name, str(page), 0)])


# --------------------------------------------------------------- numpydoc ---
#: Public modules whose objects must have complete docstrings.
PUBLIC = [
    "skdim",
    "skdim.featurize",
    "skdim.datasets",
    "skdim.data",
    "skdim.nn",
    "skdim.matminer",
    "skdim.cli",
    "skdim.pretrained",
    "skdim.overlap",
    "skdim.site_stats",
]
#: Sections numpydoc.validate must not report missing: no docstring,
#: undocumented or unknown parameter, no Returns section, no Examples section.
CHECKS = {"GL08", "PR01", "PR02", "RT01", "EX01"}


def _public_objects() -> list[tuple[str, bool]]:
    """(import path, is a method) of public classes, functions and their methods.

    Methods count when a class of skdim defines them (not skorch, sklearn or
    torch); classes and functions need Examples, methods do not.
    """
    found: dict[str, bool] = {}
    for module_name in PUBLIC:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [
            n for n, o in vars(module).items() if getattr(o, "__module__", None) == module_name
        ]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or name.startswith("_"):
                continue
            path = f"{obj.__module__}.{obj.__qualname__}"
            found[path] = False
            if not inspect.isclass(obj):
                continue
            for base in obj.__mro__:
                if not base.__module__.startswith("skdim"):
                    continue
                for attr, value in vars(base).items():
                    if attr.startswith("_") or attr in vars(obj) and base is not obj:
                        continue
                    if inspect.isfunction(value) or isinstance(value, classmethod):
                        found[f"{base.__module__}.{base.__qualname__}.{attr}"] = True
    return sorted(found.items())


def _is_namedtuple(path: str) -> bool:
    module, _, name = path.rpartition(".")
    obj = getattr(importlib.import_module(module), name, None)
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


@pytest.mark.parametrize(
    ("path", "is_method"), [pytest.param(*case, id=case[0]) for case in _public_objects()]
)
def test_numpydoc_sections(path, is_method):
    validate = pytest.importorskip("numpydoc.validate").validate
    errors = {code: message for code, message in validate(path)["errors"] if code in CHECKS}
    if is_method:
        errors.pop("EX01", None)  # examples live in the class docstring
    if not is_method and _is_namedtuple(path):
        errors.pop("PR01", None)  # fields are documented under Attributes
    assert not errors, "\n".join(f"{code}: {message}" for code, message in errors.items())
