"""The ``textmtl`` command.

    textmtl run CONFIG [--set key=value ...] [--data-dir DIR]
    textmtl datasets [--data-dir DIR] [--verify]
    textmtl describe

User errors (bad config, bad data) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .errors import TextMTLError


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiment import run_experiment

    config = load_config(args.config, args.set)
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.no_progress:
        config.training.progress = False
    result = run_experiment(config, data_dir=args.data_dir, log=lambda line: print(line, flush=True))
    print()
    print(result.table.markdown())
    timings = ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
    print(f"timings (s): {timings}")
    print(f"run folder: {result.run_dir}")
    return 0


#: loader options whose tasks differ (label sets), all listed by ``textmtl datasets``
DATASET_VARIANTS = {"sst": [{"variant": "sst1"}, {"variant": "sst2"}],
                    "trec": [{"labels": "coarse"}, {"labels": "fine"}]}


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .data.datasets import DATASETS, dataset_summary
    from .data.store import verify_dataset

    status = 0
    for name in DATASETS.names():
        if name == "user_files":
            continue
        try:
            summaries = [dataset_summary(name, args.data_dir, params)
                         for params in DATASET_VARIANTS.get(name, [{}])]
        except TextMTLError as error:
            print(f"{name}: not available ({error})")
            status = 1
            continue
        print(f"{name}: found in {summaries[0]['path']} ({summaries[0]['origin']})")
        if args.verify:
            problems = verify_dataset(name, args.data_dir)
            print("  checksums: " + ("ok" if not problems else "; ".join(problems)))
            status = status or int(bool(problems))
        for task in [t for summary in summaries for t in summary["tasks"]]:
            sizes = " / ".join(f"{split} {n}" for split, n in task["sizes"].items())
            labels = task["labels"]
            shown = ", ".join(labels[:8]) + (f", ... ({len(labels)} labels)" if len(labels) > 8 else "")
            extra = f", unlabeled {task['unlabeled']}" if task.get("unlabeled") else ""
            print(f"  {task['name']} [{task['kind']}]: {sizes}{extra}; labels: {shown}")
    return status


def _cmd_describe(args: argparse.Namespace) -> int:
    from .data.datasets import DATASETS
    from .data.features import FEATURIZERS
    from .data.samplers import SAMPLERS
    from .encoders import ENCODERS
    from .sharing import SHARING
    from .weighting import WEIGHTINGS

    for title, registry in [("encoders", ENCODERS), ("sharing methods", SHARING),
                            ("loss weightings", WEIGHTINGS), ("task samplers", SAMPLERS),
                            ("featurizers", FEATURIZERS), ("datasets", DATASETS)]:
        print(f"{title}:")
        for name, summary, params in registry.describe():
            extra = ""
            if registry is ENCODERS:
                extra = f" [input: {ENCODERS.get(name).input_kind}]"
            print(f"  {name}{extra}: {summary}")
            for p in params:
                default = "required" if p.required else f"default {p.default!r}"
                print(f"      {p.name}: {p.type_name()} ({default})")
        print()
    import dataclasses
    import typing

    from .registry import _type_name
    from .training.trainer import TrainingConfig

    print("training:")
    hints = typing.get_type_hints(TrainingConfig)
    for f in dataclasses.fields(TrainingConfig):
        print(f"      {f.name}: {_type_name(hints[f.name])} (default {f.default!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textmtl", description="Multi-task learning for text.")
    parser.add_argument("--version", action="version", version=f"textmtl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an experiment config")
    run.add_argument("config", help="YAML experiment config (see configs/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set training.lr=0.01 (repeatable)")
    run.add_argument("--data-dir", help="dataset folder (default: $TEXTMTL_DATA_DIR, cache, download)")
    run.add_argument("--output-dir", help="where run folders go (default: the config's output_dir)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.set_defaults(handler=_cmd_run)

    datasets = commands.add_parser("datasets", help="list datasets: where found, split sizes, labels")
    datasets.add_argument("--data-dir", help="dataset folder")
    datasets.add_argument("--verify", action="store_true", help="check every file's sha256")
    datasets.set_defaults(handler=_cmd_datasets)

    describe = commands.add_parser("describe", help="list every registered component and its parameters")
    describe.set_defaults(handler=_cmd_describe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except TextMTLError as error:
        print(f"textmtl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("textmtl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
