"""The ``textmtl`` command.

    textmtl run CONFIG [--set key=value ...] [--data-dir DIR]
    textmtl datasets [--data-dir DIR] [--verify]
    textmtl describe
    textmtl study 20ng [--problem related|unrelated|both] [--seeds N] [--quick] [--scheduler ADDRESS] [--db PATH]
    textmtl advise --main TASK --aux TASK

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


def _cmd_study(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .meta.corpus import CorpusSettings
    from .meta.run import check_scheduler, study_20ng
    from .meta.study import PROBLEMS, StudySettings
    from .sweep import DaskExecutor, LocalExecutor

    problems = PROBLEMS if args.problem == "both" else (args.problem,)
    changes = {"problems": problems, "corpus": CorpusSettings(sample_seed=args.sample_seed)}
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.pairs is not None:
        changes["pairs"] = args.pairs
    for name in ("mtl_epochs", "curve_epochs", "f1_epoch"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.quick:
        settings = StudySettings.quick(**changes)
    else:
        from dataclasses import replace

        settings = replace(StudySettings(), **changes)
    out = Path(args.out or ("runs/study-20ng-quick" if args.quick else "runs/study-20ng"))
    executor = (DaskExecutor(check_scheduler(args.scheduler)) if args.scheduler
                else LocalExecutor(args.workers))
    try:
        study_20ng(settings, out=out, db=Path(args.db) if args.db else None, executor=executor,
                   data_dir=args.data_dir, meta_runs=args.meta_runs, progress=not args.no_progress,
                   export_advisor=Path(args.export_advisor) if args.export_advisor else None,
                   log=lambda line: print(line, flush=True), device=args.device,
                   models_per_call=args.models_per_call)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    return 0


def _cmd_advise(args: argparse.Namespace) -> int:
    from .meta.advisor import advise

    print(advise(args.main, args.aux, model_path=args.model, data_dir=args.data_dir, seeds=args.seeds,
                 top=args.top))
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

    study = commands.add_parser("study", help="the 'when does MTL help' meta-study (20 Newsgroups)")
    study.add_argument("dataset", choices=["20ng"], help="the study to run")
    study.add_argument("--problem", choices=["related", "unrelated", "both"], default="both")
    study.add_argument("--seeds", type=int, help="seeds per run (default 5; --quick: 1)")
    study.add_argument("--quick", action="store_true",
                       help="1 seed, 20 pairs per problem, 20 multi-task / 30 single-task epochs")
    study.add_argument("--pairs", type=int, help="keep this many pairs per problem (seeded choice)")
    study.add_argument("--mtl-epochs", type=int, help="epochs of a multi-task run (default 100)")
    study.add_argument("--curve-epochs", type=int, help="epochs of a single-task run (default 150)")
    study.add_argument("--f1-epoch", type=int, help="epoch whose single-task F1 is compared (default 100)")
    study.add_argument("--sample-seed", type=int, default=0, help="seed of the 200 training posts per topic")
    study.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:8786)")
    study.add_argument("--workers", type=int, help="local worker processes (default: the cores)")
    study.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    study.add_argument("--models-per-call", type=int,
                       help="models trained side by side per engine call (default: 1 on a CPU, 64 on a GPU)")
    study.add_argument("--db", metavar="PATH", help="results store (default OUT/study.sqlite)")
    study.add_argument("--out", metavar="DIR", help="output folder (default runs/study-20ng[-quick])")
    study.add_argument("--meta-runs", type=int, default=100, help="repetitions of the meta-model's 5-fold CV")
    study.add_argument("--export-advisor", metavar="PATH", help="also write the fitted advisor model here")
    study.add_argument("--data-dir", help="dataset folder")
    study.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    study.set_defaults(handler=_cmd_study)

    advise = commands.add_parser("advise", help="predict whether MTL helps a main task with an auxiliary task")
    advise.add_argument("--main", required=True, metavar="TASK",
                        help="20ng:TOPIC_A,TOPIC_B | DATASET:TASK[:LABEL_A,LABEL_B] | file:PATH[:LABEL_A,LABEL_B]")
    advise.add_argument("--aux", required=True, metavar="TASK", help="the auxiliary task, same forms")
    advise.add_argument("--model", help="meta-model JSON (default: the one shipped with textmtl)")
    advise.add_argument("--seeds", type=int, default=1, help="single-task runs per task for the curve features")
    advise.add_argument("--top", type=int, default=8, help="features to show")
    advise.add_argument("--data-dir", help="dataset folder")
    advise.set_defaults(handler=_cmd_advise)
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
