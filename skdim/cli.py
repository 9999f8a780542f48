"""Command line: ``skdim pretrain | featurize | embed | fit | predict`` (also ``python -m skdim``).

DATA is a CSV file with a CIF text column (``--structure-col``, default
"cif") or a folder of CIF/POSCAR files, optionally with a CGCNN-style
``id_prop.csv`` (id, target); ``pretrain`` also reads a store written by
``featurize``, and ``pretrain --distributed`` trains data-parallel under
``accelerate launch`` or ``torchrun`` (see docs/scaling.rst).

Rows are identified by the CSV file's id column (``matbench_id``, ``mp_id``
or ``id``, else the row number) or, for a folder, by the file name without
its ``.cif``/``.vasp``/``.poscar`` extension, with or without ``id_prop.csv``.

torch, skorch and pymatgen are imported inside the commands, so that
``skdim --help`` and ``skdim --version`` answer at once.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from pathlib import Path

from skdim._cli_support import (
    DATA_HELP,
    DESCRIPTION,
    EPILOG,
    HelpFormatter,
    LazyParser,
    add_training_options,
    check_labels,
    check_out_dir,
    class_table,
    load_data,
    resolve_max_atoms,
    set_quiet,
    steps,
)
from skdim._version import __version__

#: Errors caused by the input or the options (printed as one line, exit status 2):
#: a missing file, a missing column, a bad value or type, a diverged training run,
#: a checkpoint directory in use. Any other exception is a bug and keeps its traceback.
_USER_ERRORS = (
    FileNotFoundError,
    ValueError,
    TypeError,
    KeyError,
    FloatingPointError,
    BlockingIOError,
)


def _common(args: argparse.Namespace) -> dict:
    return {
        "max_epochs": args.max_epochs,
        "lr_schedule": args.lr_schedule,
        "lr": args.lr,
        "batch_pairs": args.batch_pairs,
        "device": args.device,
        "precision": args.precision,
        "random_state": args.random_state,
        "checkpoint_dir": args.checkpoint_dir,
        "validation_fraction": args.validation_fraction,
        "early_stopping": args.early_stopping,
        "n_jobs": args.n_jobs,
        "verbose": 0 if args.quiet else min(3, 1 + args.verbose),  # see skdim._progress
    }


def _pretrain(args: argparse.Namespace) -> None:
    from skdim import DIMPretrainer

    check_out_dir(args.out)
    options = _common(args)
    options["plateau_patience"] = args.plateau_patience
    options["objective"] = args.objective
    if (Path(args.data) / "store.json").is_file():  # written by `skdim featurize`
        from skdim.store import FeaturizedStore

        data = FeaturizedStore(args.data)
        options.update(data.featurization)
    else:
        data, _ = load_data(args.data, args.structure_col, None, args.n_jobs, not args.quiet)
        options["max_atoms"] = resolve_max_atoms(args)
    if args.distributed:  # one process per device, under accelerate launch or torchrun
        from skdim.distributed import DistributedDIMPretrainer

        options.pop("device")
        model = DistributedDIMPretrainer(**options).fit(data)
        model.save(args.out)
        if not model.accelerator.is_main_process:
            return
    else:
        model = DIMPretrainer(**options).fit(data)
        model.save(args.out)
    print(f"saved DIM pretrainer to {args.out}")


def _featurize(args: argparse.Namespace) -> None:
    from skdim.store import featurize_to_store, iter_csv_texts

    data = Path(args.data)
    if data.is_dir():
        structures, _ = load_data(args.data, args.structure_col, None, args.n_jobs, not args.quiet)
    elif data.is_file():
        structures = iter_csv_texts(data, args.structure_col)
    else:
        raise FileNotFoundError(f"{args.data} is neither a file nor a folder")
    store = featurize_to_store(
        structures,
        args.out,
        shard_size=args.shard_size,
        n_jobs=args.n_jobs,
        progress=not args.quiet,
        max_atoms=resolve_max_atoms(args),
    )
    print(f"{len(store)} structures in {args.out} ({len(store.skipped)} skipped)")


def _embed(args: argparse.Namespace) -> None:
    import pandas as pd

    from skdim import DIMPretrainer
    from skdim.pretrained import resolve_saved_model

    model = DIMPretrainer.load(resolve_saved_model(args.model), device=args.device)
    set_quiet(model, args)
    if args.embedding is not None:
        model.set_params(embedding=args.embedding)
    structures, _ = load_data(args.data, args.structure_col, None, args.n_jobs, not args.quiet)
    table = pd.DataFrame(
        model.transform(structures), index=structures.index, columns=model.get_feature_names_out()
    )
    table.to_csv(args.out)
    print(f"wrote {table.shape[0]} embeddings of width {table.shape[1]} to {args.out}")


def _fit(args: argparse.Namespace) -> None:
    from skdim import SiteNetRegressor

    check_out_dir(args.out)
    check_labels(args.data, args.structure_col, args.target)  # before parsing any structure
    structures, targets = load_data(
        args.data, args.structure_col, args.target, args.n_jobs, not args.quiet
    )
    model = SiteNetRegressor(
        pretrained=args.pretrained,
        loss=args.loss,
        output=args.output,
        max_atoms=args.max_atoms,
        max_steps=args.max_steps,
        n_estimators=args.n_estimators,
        **_common(args),
    ).fit(structures, targets)
    model.save(args.out)
    print(f"saved regressor to {args.out}")


def _predict(args: argparse.Namespace) -> None:
    import pandas as pd

    from skdim import SiteNetClassifier, SiteNetRegressor
    from skdim.persistence import load_estimator

    model = load_estimator(args.model, device=args.device)
    if not isinstance(model, (SiteNetRegressor, SiteNetClassifier)):
        raise TypeError(
            f"{args.model} holds a {type(model).__name__}, not a SiteNetRegressor or "
            "SiteNetClassifier (for a DIM pretrainer's embeddings, use skdim embed)"
        )
    set_quiet(model, args)
    structures, _ = load_data(args.data, args.structure_col, None, args.n_jobs, not args.quiet)
    if isinstance(model, SiteNetClassifier):
        if args.std:
            raise ValueError("--std is for regressors; a classifier writes class probabilities")
        frame = class_table(model, structures)
        frame.to_csv(args.out)
        print(f"wrote {len(frame)} predicted classes and their probabilities to {args.out}")
        return
    predictions = (
        model.predict(structures, return_std=True) if args.std else (model.predict(structures),)
    )
    frame = pd.DataFrame(predictions[0].reshape(len(structures), -1), index=structures.index)
    frame.columns = ["prediction"] if frame.shape[1] == 1 else [f"prediction{i}" for i in frame]
    if args.std:  # one <column>_std after each prediction column
        std = predictions[1].reshape(len(structures), -1)
        for i, column in reversed(list(enumerate(frame.columns))):
            frame.insert(i + 1, f"{column}_std", std[:, i])
    frame.to_csv(args.out)
    print(f"wrote {len(frame)} predictions to {args.out}")


#: Where ``skdim benchmark`` finds the benchmark: a script of the source repository.
_BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "label_masking.py"


@functools.lru_cache(maxsize=1)
def _benchmark_module():
    """``benchmarks/label_masking.py`` of the checkout skdim runs from, or None."""
    if not _BENCHMARK.is_file():
        return None
    spec = importlib.util.spec_from_file_location("label_masking", _BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _benchmark(args: argparse.Namespace) -> None:
    module = _benchmark_module()
    if module is None:
        raise FileNotFoundError(
            "the label-masking benchmark is a research script of the skdim repository, not "
            "part of the installed library: from a source checkout, run "
            "'python benchmarks/label_masking.py --quick' (see docs/benchmarks.rst)"
        )
    module.run(args)


def _benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    if _benchmark_module() is not None:  # else the command says where the script is
        _benchmark_module().add_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skdim`` command.

    Returns
    -------
    argparse.ArgumentParser
        One subcommand per task; each sets ``handler`` to the function that
        runs it.

    Examples
    --------
    >>> args = build_parser().parse_args(["embed", "dim_model", "data.csv", "--out", "z.csv"])
    >>> args.command, args.model, args.out
    ('embed', 'dim_model', 'z.csv')
    """
    parser = LazyParser(
        prog="skdim", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=HelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    max_atoms_help = (
        "largest supercell, in atoms, whose atoms each site attends to "
        "(default: %(featurization_default)s)"
    )
    pretrain = command("pretrain", _pretrain, "pretrain a DIM encoder without labels")
    pretrain.add_argument("data", help=f"{DATA_HELP}, or a store written by skdim featurize")
    pretrain.add_argument("--out", required=True, help="output model directory")
    pretrain.add_argument("--max-atoms", type=int, default=None, help=max_atoms_help)
    pretrain.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes started by accelerate launch or torchrun",
    )
    pretrain.add_argument(
        "--objective",
        default="dim_paper",
        help="what pretraining learns (see skdim.nn.objectives): dim_paper, the original "
        "Deep InfoMax objective; dim_fixed, without its composition shortcuts; strain, "
        "masked: structure pretext tasks; dim_fixed+strain, dim_fixed+masked: both",
    )
    pretrain.add_argument(
        "--max-epochs",
        type=int,
        default=100,
        help="most epochs (the plateau schedule stops earlier)",
    )
    pretrain.add_argument(
        "--lr-schedule",
        default="plateau",
        choices=["plateau", "constant"],
        help="plateau: cut the learning rate when the validation loss stops improving, "
        "stop after two cuts; constant: lr for --max-epochs epochs",
    )
    pretrain.add_argument(
        "--plateau-patience",
        type=int,
        default=3,
        help="epochs without improvement that make a plateau (cut the learning rate)",
    )
    add_training_options(pretrain, validation_fraction=0.1)

    featurize = command("featurize", _featurize, "featurize into a sharded store (resumable)")
    featurize.add_argument("data", help=DATA_HELP)
    featurize.add_argument("--out", required=True, help="store directory")
    featurize.add_argument("--max-atoms", type=int, default=None, help=max_atoms_help)
    featurize.add_argument("--shard-size", type=int, default=1000, help="structures per shard")

    load_device = "device to load the model on (default: the saved one; cpu without a GPU)"
    embed = command("embed", _embed, "write DIM embeddings to a CSV file")
    embed.add_argument(
        "model", help="directory written by skdim pretrain, or the name of a shipped model"
    )
    embed.add_argument("data", help=DATA_HELP)
    embed.add_argument(
        "--out", required=True, help="output CSV file: one row per structure, one column each"
    )
    embed.add_argument("--device", default=None, help=load_device)
    embed.add_argument(
        "--embedding",
        default=None,
        choices=["pooled", "global", "site_stats"],
        help="what to write (default: the model's own setting): pooled site representation, "
        "the DIM crystal code, or mean/std/min/max of the site representations",
    )

    fit = command("fit", _fit, "train a SiteNetRegressor (optionally from a pretrained model)")
    fit.add_argument(
        "data",
        help="CSV file with a CIF column and a label column (--target), or folder of "
        "CIF/POSCAR files with an id_prop.csv of labels",
    )
    fit.add_argument(
        "--target",
        default=None,
        help="label column of a CSV file (required for a CSV file; a folder's labels are "
        "those of its id_prop.csv)",
    )
    fit.add_argument("--out", required=True, help="output model directory")
    fit.add_argument(
        "--pretrained",
        default=None,
        help="directory of a saved DIM model, or the name of a shipped one",
    )
    fit.add_argument(
        "--loss", default="mae", choices=["mae", "mse", "huber"], help="training loss"
    )
    fit.add_argument(
        "--output",
        default="identity",
        choices=["identity", "softplus", "trelu"],
        help="output function; softplus and trelu predict only non-negative values (band gaps)",
    )
    fit.add_argument(
        "--max-atoms",
        type=int,
        default=None,
        help="largest supercell, in atoms (default: the pretrained model's, else "
        "%(featurization_default)s)",
    )
    fit.add_argument(
        "--max-steps",
        default="auto",
        type=steps,
        help="optimizer steps, or auto: 6 per labelled structure, from 500 to 4000",
    )
    fit.add_argument(
        "--max-epochs", type=int, default=None, help="train this many epochs instead of steps"
    )
    fit.add_argument(
        "--n-estimators",
        type=int,
        default=1,
        help="networks trained side by side (a deep ensemble; >= 2 gives predict --std); "
        "time and memory grow about as much (default: %(default)s)",
    )
    fit.add_argument(
        "--lr-schedule",
        default="cosine",
        choices=["cosine", "constant"],
        help="cosine: warm-up, then decay to 1%% of lr at the last step; constant: lr throughout",
    )
    add_training_options(fit, validation_fraction=None)

    predict = command(
        "predict", _predict, "predict with a saved SiteNetRegressor or SiteNetClassifier"
    )
    predict.add_argument(
        "model", help="directory written by skdim fit (or by the save method of an estimator)"
    )
    predict.add_argument("data", help=DATA_HELP)
    predict.add_argument(
        "--out",
        required=True,
        help="output CSV file: id, prediction (a classifier adds one probability_CLASS "
        "column per class)",
    )
    predict.add_argument("--device", default=None, help=load_device)
    predict.add_argument(
        "--std",
        action="store_true",
        help="add a <column>_std column: the spread of an ensemble's networks "
        "(a model fitted with --n-estimators 2 or more)",
    )

    benchmark = command(
        "benchmark",
        _benchmark,
        "label-masking benchmark, in a source checkout (benchmarks/label_masking.py)",
    )
    benchmark.add_lazily = _benchmark_arguments  # loads the script only for this command

    for sub in (pretrain, featurize, embed, fit, predict):
        sub.add_argument("--structure-col", default="cif", help="CIF column of a CSV file")
        sub.add_argument("--n-jobs", type=int, default=1, help="processes for parsing/featurizing")
        sub.add_argument(
            "--quiet", action="store_true", help="no progress lines or bars, only the result"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 when the input or an option is
        invalid or training diverged (the error is printed to standard error
        as one line, without a traceback; other errors keep theirs), 130 when
        Ctrl-C interrupted it (what ``--checkpoint-dir`` kept is printed).

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     status = main(["predict", "no_such_model", "data.csv", "--out", "p.csv"])
    >>> status, err.getvalue().startswith("skdim predict: error:")
    (2, True)

    From a shell, the same commands are ``skdim pretrain ...``, ``skdim
    predict ...``; ``skdim --help`` lists them.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not (args.command == "benchmark" and _benchmark_module() is None):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        args.handler(args)
    except _USER_ERRORS as error:
        # KeyError's str() is the repr of its argument: print the message itself
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"skdim {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # Ctrl-C: nothing saved to --out
        detail = f": {error}" if str(error) else ""
        print(f"skdim {args.command}: interrupted{detail}", file=sys.stderr)
        return 130
    return 0


def pretrain_main(argv: list[str] | None = None) -> int:
    """``skdim-pretrain``: ``skdim pretrain --distributed``, for accelerate launch or torchrun.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments of ``skdim pretrain``; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status.

    Examples
    --------
    From a shell (see docs/scaling.rst)::

        torchrun --standalone --nproc_per_node 4 $(which skdim-pretrain) STORE --out dim_model
    """
    return main(["pretrain", "--distributed", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
