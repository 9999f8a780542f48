"""Pieces of the command line (:mod:`skdim.cli`): its help, and how commands read data.

Nothing here imports torch, skorch, pymatgen or pandas at import time, so that
``skdim --help`` and ``skdim --version`` answer at once.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIPTION = """\
Self-supervised Site-Net for crystal property prediction: pretrain a Deep
InfoMax encoder on unlabelled structures, fine-tune it on a few labels,
predict.

DATA is a CSV file with one CIF text per row (column --structure-col) or a
folder of CIF/POSCAR files; a folder's labels come from its id_prop.csv (no
header; file name, target). Output rows are named by the CSV file's id column
(matbench_id, mp_id or id) or by the file name without its extension.
"""

EPILOG = """\
example:
  skdim pretrain structures.csv --out dim_model
  skdim fit labelled.csv --target e_form_per_atom --pretrained dim_model --out reg
  skdim predict reg new_structures/ --out predictions.csv
  skdim embed dim_model structures.csv --out embeddings.csv

Run skdim COMMAND --help for the options of a command.
"""

#: The help of DATA, the structures a command reads.
DATA_HELP = "CSV file with a CIF column (--structure-col), or folder of CIF/POSCAR files"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows an option's default, except None, False, switches and defaults its help states.

    A switch (``store_true`` / ``store_false``) has no value to show: "--no-plots
    (default: True)" would read as if plots were off by default.

    ``%(featurization_default)s`` in a help text is the featurization default
    of the option, read from :mod:`skdim._featurize_settings` only when the
    help is shown.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or isinstance(
                action,
                (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction),
            )
        ):
            return text
        return f"{text} (default: %(default)s)"

    def _expand_help(self, action: argparse.Action) -> str:
        if "%(featurization_default)" in (action.help or ""):
            from skdim._featurize_settings import DEFAULTS

            action.featurization_default = getattr(DEFAULTS, action.dest)
        return super()._expand_help(action)


class LazyParser(argparse.ArgumentParser):
    """An ArgumentParser whose arguments may be added on first use (``add_lazily``).

    ``skdim benchmark`` takes its options from a script of the source
    checkout, which is loaded only when that command runs.
    """

    add_lazily = None

    def parse_known_args(self, args=None, namespace=None):
        """Add the lazy arguments, then parse as ArgumentParser does."""
        if self.add_lazily is not None:
            add, self.add_lazily = self.add_lazily, None
            add(self)
        return super().parse_known_args(args, namespace)


def load_data(path: str, structure_col: str, target: str | None, n_jobs: int, progress: bool):
    """Structures (Series indexed by id) and targets (Series or None).

    A folder's targets are the second column of its ``id_prop.csv``; a
    ``target`` column name cannot apply to it and is refused.
    """
    from skdim.datasets import load_structure_folder, load_structures_csv

    data = Path(path)
    if data.is_dir():
        has_labels = (data / "id_prop.csv").is_file()
        if target is not None:
            source = "its id_prop.csv" if has_labels else "an id_prop.csv (it has none)"
            raise ValueError(
                f"--target names a column of a CSV file; the labels of the folder {path} "
                f"come from {source}: drop --target"
            )
        id_prop = "id_prop.csv" if has_labels else None
        structures, targets = load_structure_folder(
            data, id_prop, n_jobs=n_jobs, progress=progress
        )
        return structures, targets
    if not data.is_file():
        raise FileNotFoundError(f"{path} is neither a file nor a folder")
    structures, labels = load_structures_csv(
        data, structure_col, target, n_jobs=n_jobs, progress=progress
    )
    return structures, labels if target is not None else None


def check_labels(path: str, structure_col: str, target: str | None) -> None:
    """Refuse, before any structure is parsed, data that ``skdim fit`` finds no labels in.

    A folder needs an ``id_prop.csv``. A CSV file needs ``target``, one of its
    columns: otherwise the error lists the candidates, its numeric columns
    other than the structure and id columns (judged on its first 1,000 rows).
    """
    data = Path(path)
    if data.is_dir() and not (data / "id_prop.csv").is_file():
        raise ValueError(
            f"no targets: the folder {path} has no id_prop.csv (file, target per line)"
        )
    if not data.is_file():
        return
    import pandas as pd

    from skdim.datasets import _ID_COLUMNS

    head = pd.read_csv(data, usecols=lambda c: c != structure_col, nrows=1000)
    if target in head.columns:
        return
    skip = {structure_col, *_ID_COLUMNS}
    labels = [c for c in head if c not in skip and pd.api.types.is_numeric_dtype(head[c])]
    candidates = ", ".join(map(str, labels)) or "none"
    if target is None:
        raise ValueError(
            f"no targets: pass --target COLUMN, one of the label columns of {path}: {candidates}"
        )
    raise KeyError(f"{path} has no target column {target!r}; its label columns are {candidates}")


def check_out_dir(path: str) -> None:
    """Refuse an ``--out`` directory that cannot be written, before any training."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {path} is a file; give a directory for the model")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"--out {path} cannot be written: {existing} is not a writable directory "
            "(checked before training, so that no training is lost)"
        )


def steps(value: str) -> int | str:
    """``--max-steps``: a positive integer or "auto", checked before any data is read."""
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer or 'auto'")
    return number


def resolve_max_atoms(args: argparse.Namespace) -> int:
    """``--max-atoms``, or the featurization default when it is not given."""
    from skdim._featurize_settings import DEFAULTS

    return DEFAULTS.max_atoms if args.max_atoms is None else args.max_atoms


def set_quiet(model, args: argparse.Namespace):
    """A loaded model prints (featurization progress) as this command asks, not as it was saved."""
    model.verbose = 0 if args.quiet else 1
    return model


def add_training_options(
    parser: argparse.ArgumentParser, validation_fraction: float | None
) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="by default a line every tenth of the training run (steps done / total, losses, "
        "time left); -v adds a row per epoch (the epoch table), -vv also a bar over each "
        "epoch's batches on a terminal",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    parser.add_argument(
        "--batch-pairs",
        type=int,
        default=32768,
        help="memory budget of a batch, in padded (site, atom) pairs",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="floating-point precision of training (bfloat16/float16: for GPUs)",
    )
    parser.add_argument(
        "--random-state", type=int, default=0, help="seed: the same seed gives the same model"
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="save every epoch here, and resume from here an interrupted run",
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=validation_fraction,
        help="fraction of the structures held out for the validation loss"
        + ("" if validation_fraction else " (default: none)"),
    )
    parser.add_argument(
        "--early-stopping",
        type=int,
        default=None,
        help="stop after this many epochs without improvement of the validation loss "
        "(needs --validation-fraction)",
    )


def class_table(model, structures):
    """Predicted label and one ``probability_<class>`` column per class, by id."""
    import pandas as pd

    probabilities = model.predict_proba(structures)
    frame = pd.DataFrame(
        probabilities,
        index=structures.index,
        columns=[f"probability_{label}" for label in model.classes_],
    )
    frame.insert(0, "prediction", model.classes_[probabilities.argmax(axis=1)])
    return frame
