"""The ``textmtl`` command.

    textmtl run CONFIG [--set key=value ...] [--data-dir DIR] [--resume [RUN_DIR]] [--scheduler ADDRESS]
    textmtl sweep CONFIG --grid KEY=V1,V2 [--grid ...] [--resume [SWEEP_DIR]]
    textmtl pair-gain CONFIG --method LABEL [--alone LABEL] [--tasks T ...] [--resume [RUN_DIR]]
    textmtl plot RUN_DIR [--out DIR]
    textmtl predict RUN_DIR --task TASK INPUT [--output FILE] [--method M] [--seed N]
    textmtl evaluate RUN_DIR --task TASK FILE [--method M] [--seed N]
    textmtl datasets [--data-dir DIR] [--verify] [--download]
    textmtl describe
    textmtl study 20ng [--protocol authors|cleaned] [--problem related|unrelated|both] [--seeds N] [--quick] [--db PATH]
    textmtl advise --main TASK --aux TASK

User errors (bad config, bad data) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Sequence

from . import __version__
from .errors import TextMTLError


def _config_of(args: argparse.Namespace):
    """The config of ``run`` and ``pair-gain``: the file, its ``--set`` overrides, the output
    folder and the progress switch of the command line."""
    from .config import load_config

    config = load_config(args.config, args.set)
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.no_progress:
        config.training.progress = False
    if args.tensorboard:
        config.training.tensorboard = args.tensorboard
    return config


@contextlib.contextmanager
def _executor_of(args: argparse.Namespace):
    """The Dask cluster of ``--scheduler`` (closed afterwards), else None: local processes."""
    if not args.scheduler:
        yield None
        return
    from .errors import ConfigError
    from .meta.run import check_scheduler
    from .sweep import DaskExecutor

    if args.workers != 1:
        raise ConfigError("--workers and --scheduler exclude each other: the cluster's workers train "
                          "the models (start the cluster with as many as you want)")
    executor = DaskExecutor(check_scheduler(args.scheduler))
    try:
        yield executor
    finally:
        executor.close()


def _launch_data_parallel(args: argparse.Namespace) -> int:
    """``run --ddp N``: the same command under torchrun, N processes on this machine."""
    import subprocess

    from .errors import ConfigError

    if args.ddp < 2:
        raise ConfigError(f"--ddp expects 2 or more processes, got {args.ddp}")
    rest, skip = [], False
    for item in args.argv:
        if skip:
            skip = False
        elif item == "--ddp":
            skip = True
        elif not item.startswith("--ddp="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={args.ddp}", "-m", "textmtl", *rest]
    print(f"textmtl: data-parallel over {args.ddp} processes: {' '.join(command[1:])}", file=sys.stderr,
          flush=True)
    return subprocess.run(command).returncode


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiment import run_experiment
    from .training import distributed

    if args.ddp:
        return _launch_data_parallel(args)

    config = _config_of(args)
    resume = args.resume
    if resume == LATEST:
        resume = _latest_partial_run(config)
    if not resume:
        _mention_partial_runs(config)
    group = distributed.current()
    quiet = group is not None and not group.is_main  # data-parallel: rank 0 speaks
    if quiet:
        config.training.progress = False
    with _executor_of(args) as executor:
        result = run_experiment(config, data_dir=args.data_dir,
                                log=(lambda line: None) if quiet else (lambda line: print(line, flush=True)),
                                resume=resume, workers=args.workers, executor=executor)
    if quiet:
        return 0
    print()
    print(result.table.markdown())
    timings = ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
    print(f"timings (s): {timings}")
    print(f"run folder: {result.run_dir}")
    return 0


def _cmd_pair_gain(args: argparse.Namespace) -> int:
    from .pairwise import pairwise_config, run_pairwise

    config = _config_of(args)
    resume = args.resume
    if resume == LATEST:  # the newest incomplete folder of the derived (pair-wise) config
        resume = _latest_partial_run(pairwise_config(config, args.method, args.alone))
    with _executor_of(args) as executor:
        result = run_pairwise(config, args.method, alone=args.alone, tasks=args.tasks, metric=args.metric,
                              data_dir=args.data_dir, log=lambda line: print(line, flush=True),
                              resume=resume, workers=args.workers, executor=executor)
    print()
    print((result.run_dir / "ppg.md").read_text())
    print(f"total time {result.timings['total_s']:.1f} s; run folder: {result.run_dir}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .override_grid import run_sweep

    resume = args.resume
    if resume == LATEST:
        resume = _latest_partial_sweep(args)
    with _executor_of(args) as executor:
        result = run_sweep(args.config, args.grid, overrides=args.set, output_dir=args.output_dir,
                           data_dir=args.data_dir, log=lambda line: print(line, flush=True),
                           resume=resume, workers=args.workers, executor=executor, metric=args.metric,
                           progress=not args.no_progress, tensorboard=args.tensorboard)
    print()
    print((result.folder / "summary.md").read_text())
    print(f"sweep folder: {result.folder}")
    return 0


def _latest_partial_sweep(args: argparse.Namespace):
    import dataclasses

    from .config import load_config

    config = load_config(args.config, args.set)
    # a sweep folder is <output_dir>/<name>-sweep-<stamp>.partial: the runs' search, renamed
    return _latest_partial_run(dataclasses.replace(config, name=f"{config.name}-sweep",
                                                   output_dir=args.output_dir or config.output_dir))


def _cmd_plot(args: argparse.Namespace) -> int:
    from .report.curves import plot_run

    for path in plot_run(args.run_dir, args.out):
        print(path)
    return 0


#: ``--resume`` without a folder: the newest incomplete run of the config
LATEST = "latest"


def _partial_runs(config) -> list:
    from pathlib import Path

    # oldest first; the timestamp in the name sorts like the time
    return sorted(Path(config.output_dir).glob(f"{config.name}-*.partial"))


def _latest_partial_run(config):
    from .errors import ConfigError

    stale = _partial_runs(config)
    if not stale:
        raise ConfigError(f"--resume: no incomplete run of {config.name!r} in {config.output_dir}; "
                          "expected a <name>-<time>.partial folder (or give the folder)")
    print(f"resuming {stale[-1]}", file=sys.stderr)
    return stale[-1]


def _mention_partial_runs(config) -> None:
    stale = _partial_runs(config)
    if stale:
        print(f"note: {len(stale)} incomplete run(s) of {config.name!r} exist, the newest "
              f"{stale[-1]}; continue it with --resume (or --resume FOLDER)", file=sys.stderr)


def _read_inputs(path: str, task_kind: str, text_column: str, label_column: str | None):
    """Texts (and labels, when ``label_column`` is given) of a prediction or evaluation file.

    ``.txt`` (or any other suffix): one text per line (for tagging, tokens separated by
    spaces); labelled files for evaluation must be CSV, TSV or JSONL. CSV, TSV,
    JSONL: the ``text_column`` (and ``label_column``) of each row; a tagging row's text is a
    list of tokens (JSONL) or a space-separated string, its label a list or a space-separated
    string.
    """
    import csv
    import io
    import json
    from pathlib import Path

    from .data.corpora import read_bytes
    from .data.corpora.user_files import decode_utf8
    from .errors import DataError

    file = Path(path)
    text = decode_utf8(read_bytes(file), path)
    suffix = file.suffix.lower()
    rows: list[tuple[object, object]] = []
    if suffix in (".csv", ".tsv", ".tab"):
        delimiter = "," if suffix == ".csv" else "\t"
        from .data.corpora.user_files import MAX_FIELD_CHARS

        csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))  # long documents
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file; expected a header line and one text per row")
            wanted = [text_column] + ([label_column] if label_column else [])
            for column in wanted:
                if column not in header:
                    raise DataError(f"{path}: missing column {column!r}; found columns: {', '.join(header)}")
                if header.count(column) > 1:
                    raise DataError(f"{path}: the header names column {column!r} twice; "
                                    "expected unique column names")
            for fields in reader:
                if len(fields) != len(header):
                    raise DataError(f"{path}: line {reader.line_num} has {len(fields)} fields, "
                                    f"expected {len(header)}")
                rows.append((fields[header.index(text_column)],
                             fields[header.index(label_column)] if label_column else None))
        except csv.Error as error:
            raise DataError(f"{path}: line {reader.line_num} is not valid CSV/TSV ({error})") from None
    elif suffix in (".jsonl", ".ndjson"):
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line} is not JSON ({error.msg})") from None
            if not isinstance(record, dict) or text_column not in record or \
                    (label_column and label_column not in record):
                raise DataError(f"{path}: line {line} needs the key(s) "
                                f"{', '.join(repr(k) for k in [text_column, label_column] if k)}")
            rows.append((record[text_column], record[label_column] if label_column else None))
    else:
        if label_column:
            raise DataError(f"{path}: evaluation needs labels: use a CSV, TSV or JSONL file with "
                            f"'{text_column}' and '{label_column}' columns")
        rows = [(line, None) for line in text.splitlines() if line.strip()]
    if not rows:
        raise DataError(f"{path}: no input rows; expected one text per line (or row)")
    texts = [r[0] for r in rows]
    labels = [r[1] for r in rows]
    if task_kind == "tagging":
        texts = [t.split() if isinstance(t, str) else list(t) for t in texts]
        labels = [l.split() if isinstance(l, str) else l for l in labels]
        for i, (tokens, tags) in enumerate(zip(texts, labels), start=1):
            if tags is not None and len(tags) != len(tokens):
                raise DataError(f"{path}: row {i} has {len(tokens)} tokens but {len(tags)} labels")
    else:
        labels = [None if l is None else str(l) for l in labels]
    return texts, labels


def _cmd_predict(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .model import load

    model = load(args.run_dir, method=args.method, seed=args.seed, task=args.task, device=args.device,
                 data_dir=args.data_dir)
    _, info = model._task(args.task)  # unknown task: a one-line error listing the model's tasks
    texts, _ = _read_inputs(args.input, info["kind"], args.text_column, None)
    predictions = model.predict(args.task, texts)
    lines = [json.dumps({"text": text, **p.as_dict()}, ensure_ascii=False)
             for text, p in zip(texts, predictions)]
    output = "\n".join(lines) + "\n"
    if args.output:
        target = Path(args.output)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(output, encoding="utf-8")
        temporary.replace(target)
        print(f"{len(lines)} predictions of {args.task!r} by {model.folder} written to {target}")
    else:
        sys.stdout.write(output)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .model import load

    model = load(args.run_dir, method=args.method, seed=args.seed, task=args.task, device=args.device,
                 data_dir=args.data_dir)
    k, info = model._task(args.task)
    texts, labels = _read_inputs(args.file, info["kind"], args.text_column, args.label_column)
    metrics = model.evaluate(args.task, texts, labels)
    print(f"{args.task} on {args.file} ({len(texts)} examples), model {model.folder}:")
    for name, value in metrics.items():
        print(f"  {name}: {value:.4f}")
    return 0


def _print_reports(run_dir: str, filename: str, formatter, kind: str) -> int:
    """Print ``formatter(json)`` of every model folder in ``run_dir`` that holds ``filename``."""
    import json
    from pathlib import Path

    from .errors import ConfigError
    from .model import model_folders

    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: run folder not found")
    shown = 0
    for folder in model_folders(root):
        path = folder / filename
        if path.is_file():
            where = folder.relative_to(root) if folder != root else folder
            print(f"== {where}")
            print(formatter(json.loads(path.read_text(encoding="utf-8"))))
            shown += 1
    if not shown:
        raise ConfigError(f"{root}: no model folder of {kind} (no {filename})")
    return 0


def _cmd_clusters(args: argparse.Namespace) -> int:
    """Print the clusters of every cluster-layer model in RUN_DIR (its ``clusters.json``)."""
    from .report.clusters import CLUSTERS_JSON, format_clusters

    return _print_reports(args.run_dir, CLUSTERS_JSON, format_clusters, "a cluster-layer method")


def _cmd_branches(args: argparse.Namespace) -> int:
    """Print the branching tree of every FAFS model in RUN_DIR (its ``branching.json``)."""
    from .report.branching import BRANCHING_JSON, format_branching

    return _print_reports(args.run_dir, BRANCHING_JSON, format_branching,
                          "a widening method (fully_adaptive)")


def _cmd_covariance(args: argparse.Namespace) -> int:
    """Print the learned task covariance of every DRN model in RUN_DIR (``task_covariance.json``)."""
    from .report.task_covariance import TASK_COVARIANCE_JSON, format_task_covariance

    return _print_reports(args.run_dir, TASK_COVARIANCE_JSON, format_task_covariance,
                          "a task_covariance regulariser")


def _cmd_mixing(args: argparse.Namespace) -> int:
    """Print the α matrices and β vectors of every mixing model (cross-stitch, sluice) in RUN_DIR.

    A model folder's ``mixing.json`` is read; a folder written before that file existed is
    loaded and asked (``learned_mixing()``). Other methods' folders are skipped.
    """
    import json
    from pathlib import Path

    from .errors import ConfigError
    from .model import TrainedModel, model_folders
    from .report.mixing import MIXING_JSON, format_mixing, write_mixing
    from .sharing import SHARING

    root = Path(args.run_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: run folder not found")
    shown = 0
    for folder in model_folders(root):
        path = folder / MIXING_JSON
        if path.is_file():
            mixing = json.loads(path.read_text(encoding="utf-8"))
        else:
            method = json.loads((folder / "model.json").read_text(encoding="utf-8"))["method"]["name"]
            if method not in SHARING or not hasattr(SHARING.get(method), "learned_mixing"):
                continue  # not a mixing method: nothing to load
            mixing = TrainedModel(folder, device="cpu").model.learned_mixing()
            if args.write:
                write_mixing(folder, mixing)
        where = folder.relative_to(root) if folder != root else folder
        print(f"== {where}")
        print(format_mixing(mixing))
        shown += 1
    if not shown:
        raise ConfigError(f"{root}: no model folder of a mixing method (cross_stitch, sluice) inside")
    return 0


#: loader options whose tasks differ (label sets), all listed by ``textmtl datasets``
DATASET_VARIANTS = {"sst": [{"variant": "sst1"}, {"variant": "sst2"}],
                    "trec": [{"labels": "coarse"}, {"labels": "fine"}]}


def _cmd_datasets(args: argparse.Namespace) -> int:
    """List every built-in dataset; only ``--download`` fetches the missing ones.

    Listing is a question ("what do I have?"), so by default nothing is downloaded: a dataset
    found nowhere is reported as such, with the two ways to get it.
    """
    from pathlib import Path

    from .data.datasets import DATASETS, dataset_summary
    from .data.store import locate, verify_dataset
    from .errors import DataError

    status = 0
    for name in DATASETS.names():
        if name == "user_files":
            continue
        try:
            location = locate(name, args.data_dir, download=args.download)
        except DataError as error:
            if args.download:
                print(f"{name}: not available ({error})")
            elif args.data_dir and not Path(args.data_dir).expanduser().is_dir():
                raise  # a mistyped --data-dir: one error line, not "not found" for every dataset
            else:
                print(f"{name}: not found (run textmtl datasets --download, or set --data-dir)")
            status = 1
            continue
        try:
            # found (or downloaded just now): the summaries' own lookups find it, never download
            summaries = [dataset_summary(name, args.data_dir, params)
                         for params in DATASET_VARIANTS.get(name, [{}])]
        except TextMTLError as error:
            print(f"{name}: not available ({error})")
            status = 1
            continue
        print(f"{name}: found in {location.path} ({location.origin})")
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

    from .regularizers import REGULARIZERS

    for title, registry in [("encoders", ENCODERS), ("sharing methods", SHARING),
                            ("loss weightings", WEIGHTINGS), ("task samplers", SAMPLERS),
                            ("regularizers", REGULARIZERS),
                            ("featurizers", FEATURIZERS), ("datasets", DATASETS)]:
        print(f"{title}:")
        for name, summary, params in registry.describe():
            extra = ""
            if registry is ENCODERS:
                extra = f" [input: {ENCODERS.get(name).input_kind}]"
            print(f"  {name}{extra}: {summary}")
            _describe_parameters(params, "      ")
        print()
    import dataclasses
    import typing

    from .registry import _type_name
    from .training.config import TrainingConfig

    print("training:")
    hints = typing.get_type_hints(TrainingConfig)
    for f in dataclasses.fields(TrainingConfig):
        print(f"      {f.name}: {_type_name(hints[f.name])} (default {f.default!r})")
    return 0


def _describe_parameters(params, indent: str) -> None:
    """Print parameters; a parameter that holds components lists that registry's entries."""
    from .registry import component_registry

    for p in params:
        default = "required" if p.required else f"default {p.default!r}"
        print(f"{indent}{p.name}: {p.type_name()} ({default})")
        nested = component_registry(p.annotation)
        if nested is not None:
            registry, many = nested
            print(f"{indent}  {'each one of' if many else 'one of'} the {registry.axis}s:")
            for name, summary, inner in registry.describe():
                print(f"{indent}    {name}: {summary}")
                _describe_parameters(inner, indent + "        ")


def _cmd_study(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from .meta.run import check_scheduler, study_20ng
    from .meta.study import PROBLEMS, apply_overrides, protocol_settings
    from .sweep import DaskExecutor, LocalExecutor

    problems = PROBLEMS if args.problem == "both" else (args.problem,)
    settings = protocol_settings(args.protocol, quick=args.quick, problems=problems)
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.pairs is not None:
        changes["pairs"] = args.pairs
    for name in ("mtl_epochs", "curve_epochs", "f1_epoch", "eval_every"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.sample_seed is not None:  # the protocol's corpus, with another seed
        changes["corpus"] = replace(settings.corpus, sample_seed=args.sample_seed)
    settings = apply_overrides(replace(settings, **changes), args.set)
    # the cleaned protocol keeps its folders of before protocols existed; others get their own
    suffix = "" if args.protocol == "cleaned" else f"-{args.protocol}"
    out = Path(args.out or f"runs/study-{args.study}{suffix}{'-quick' if args.quick else ''}")
    executor = (DaskExecutor(check_scheduler(args.scheduler)) if args.scheduler
                else LocalExecutor(args.workers))
    if args.study == "fdu":
        from .meta.collection import FDU_DOMAINS
        from .meta.run import INDEPENDENT_GAINS, study_fdu

        reference = Path(args.reference or f"results/study-20ng-{args.protocol}")
        try:
            study_fdu(settings, out=out, reference=reference, db=Path(args.db) if args.db else None,
                      executor=executor, data_dir=args.data_dir, progress=not args.no_progress,
                      log=lambda line: print(line, flush=True), device=args.device,
                      models_per_call=args.models_per_call, protocol=args.protocol,
                      independent=Path(args.independent) if args.independent else INDEPENDENT_GAINS,
                      domains=FDU_DOMAINS[:4] if args.quick else None, meta_runs=args.meta_runs,
                      export_advisor=Path(args.export_advisor) if args.export_advisor else None)
        finally:
            if hasattr(executor, "close"):
                executor.close()
        return 0
    try:
        study_20ng(settings, out=out, db=Path(args.db) if args.db else None, executor=executor,
                   data_dir=args.data_dir, meta_runs=args.meta_runs, progress=not args.no_progress,
                   export_advisor=Path(args.export_advisor) if args.export_advisor else None,
                   log=lambda line: print(line, flush=True), device=args.device,
                   models_per_call=args.models_per_call, protocol=args.protocol)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    return 0


def _cmd_advise(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .meta.advisor import MEASURE_SEEDS, TASKS_SEEDS, advise, advise_measured, advise_tasks

    # a warning is one plain line on stderr (not Python's "file:line: UserWarning"), like errors
    warn = lambda line: print(f"textmtl: warning: {line}", file=sys.stderr)  # noqa: E731
    if args.tasks is not None:
        if args.main or args.aux:
            raise ConfigError("advise: --tasks measures every pair of its tasks; expected either --tasks or "
                              "--main/--aux, found both")
        seeds = TASKS_SEEDS if args.seeds is None else args.seeds
        print(advise_tasks(args.tasks, data_dir=args.data_dir, seeds=seeds, epochs=args.epochs, metric=args.metric,
                           workers=args.workers, out=args.out or "runs/advise-tasks", progress=not args.no_progress))
        return 0
    missing = [flag for flag, value in (("--main", args.main), ("--aux", args.aux)) if not value]
    if missing:
        raise ConfigError(f"advise: expected --main TASK and --aux TASK (or --tasks TASK ...), "
                          f"{' and '.join(missing)} missing")
    if args.measure:
        seeds = MEASURE_SEEDS if args.seeds is None else args.seeds
        print(advise_measured(args.main, args.aux, data_dir=args.data_dir, seeds=seeds, epochs=args.epochs,
                              metric=args.metric, workers=args.workers, out=args.out, progress=not args.no_progress,
                              warn=warn))
        return 0
    unused = [flag for flag, value in (("--epochs", args.epochs), ("--workers", args.workers), ("--out", args.out))
              if value is not None]
    if unused:
        raise ConfigError(f"advise: {unused[0]} is an option of --measure and --tasks; expected it with one of them")
    print(advise(args.main, args.aux, model_path=args.model, data_dir=args.data_dir,
                 seeds=args.seeds, top=args.top, warn=warn))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textmtl", description="Multi-task learning for text.")
    parser.add_argument("--version", action="version", version=f"textmtl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def config_options(command: argparse.ArgumentParser, resume_help: str, metric: bool = False) -> None:
        # what `run`, `sweep` and `pair-gain` share: the config's overrides, where data and runs
        # go, where the trainings run, how to resume (and the score of a summary)
        command.add_argument("--resume", metavar="FOLDER", nargs="?", const=LATEST, help=resume_help)
        if metric:
            command.add_argument("--metric", help="the score of every task (default: each task's default metric)")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="override a config value, e.g. --set training.lr=0.01 (repeatable)")
        command.add_argument("--data-dir", help="dataset folder (default: $TEXTMTL_DATA_DIR, cache, download)")
        command.add_argument("--output-dir", help="where run folders go (default: the config's output_dir)")
        command.add_argument("--no-progress", action="store_true", help="hide progress bars")
        command.add_argument("--workers", type=int, default=1,
                             help="train this many models at once, one process and torch thread each "
                                  "(default 1; 2 on a 2-core machine roughly halves a long table)")
        command.add_argument("--tensorboard", metavar="DIR",
                             help="also write every training's per-epoch curves as TensorBoard event "
                                  "files under DIR (extra textmtl[tracking])")
        command.add_argument("--scheduler", metavar="ADDRESS",
                             help="train the models on this Dask cluster (tcp://host:8786; extra "
                                  "textmtl[dask]); the run folder is written here, as a local run's")

    run = commands.add_parser("run", help="run an experiment config")
    run.add_argument("config", help="YAML experiment config (see configs/)")
    run.add_argument("--ddp", type=int, metavar="N",
                     help="train every model data-parallel over N processes (starts torchrun; gloo on "
                          "the CPU, NCCL on CUDA); or start this command under torchrun yourself")
    config_options(run, "continue this run folder (finished or .partial) of the same config: "
                        "keep its finished (method, seed) runs, train the rest; without a "
                        "folder, the newest incomplete run of the config")
    run.set_defaults(handler=_cmd_run)

    sweep = commands.add_parser("sweep", help="run every cell of a grid of config overrides, one summary table")
    sweep.add_argument("config", help="YAML experiment config (see configs/)")
    sweep.add_argument("--grid", action="append", default=[], required=True, metavar="KEY=V1,V2",
                       help="a config key and its values, YAML each (e.g. training.lr=0.001,0.01 or "
                            "methods=[hard],[cross_stitch]); repeat for more keys: every combination is a cell")
    config_options(sweep, "continue this sweep folder (same config, --set and --grid): finished cells "
                          "are kept; without a folder, the newest incomplete sweep of the config", metric=True)
    sweep.set_defaults(handler=_cmd_sweep)

    pairs = commands.add_parser(
        "pair-gain", help="pair-wise performance gain: every pair of tasks trained jointly against each alone")
    pairs.add_argument("config", help="YAML experiment config: its data, features, training and seeds")
    pairs.add_argument("--method", required=True,
                       help="label of the config's joint method entry (e.g. hard: the cheap screen)")
    pairs.add_argument("--alone", help="label of the separately trained entry for the alone scores "
                                       "(default: the config's one such entry, else single_task)")
    pairs.add_argument("--tasks", nargs="+", metavar="TASK", help="the tasks to pair (default: all)")
    config_options(pairs, "continue this pair-wise folder (same config, method and tasks); without a "
                          "folder, the newest incomplete one", metric=True)
    pairs.set_defaults(handler=_cmd_pair_gain)

    for command, helptext in (("predict", "predict a task's labels for new texts with a trained model"),
                              ("evaluate", "score a trained model on a labelled file")):
        sub = commands.add_parser(command, help=helptext)
        sub.add_argument("run_dir", metavar="RUN_DIR",
                         help="a model folder (<run>/<method>/seed-<n>[/<task>]) or an experiment folder")
        sub.add_argument("--task", required=True, help="the task to predict")
        sub.add_argument("input" if command == "predict" else "file", metavar="INPUT" if command == "predict" else "FILE",
                         help="text lines (.txt), or CSV / TSV / JSONL with a text column"
                         + (" and a label column" if command == "evaluate" else ""))
        sub.add_argument("--method", help="the method (column) of an experiment folder")
        sub.add_argument("--seed", type=int, help="the seed of an experiment folder")
        sub.add_argument("--text-column", default="text", help="column / key of the text (default text)")
        if command == "predict":
            sub.add_argument("--output", metavar="FILE", help="write JSON lines here (default: stdout)")
        else:
            sub.add_argument("--label-column", default="label", help="column / key of the label (default label)")
        sub.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
        sub.add_argument("--data-dir", help="the run's datasets, for methods that score texts beside its "
                                            "training texts (default: $TEXTMTL_DATA_DIR, cache)")
        sub.set_defaults(handler=_cmd_predict if command == "predict" else _cmd_evaluate)

    plot = commands.add_parser("plot", help="draw the learning curves of every method and task of a run (PNG)")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (textmtl run, a sweep cell's run, pair-gain)")
    plot.add_argument("--out", metavar="DIR", help="where the PNGs go (default: RUN_DIR/plots)")
    plot.set_defaults(handler=_cmd_plot)

    datasets = commands.add_parser("datasets", help="list datasets: where found, split sizes, labels")
    datasets.add_argument("--data-dir", help="dataset folder")
    datasets.add_argument("--verify", action="store_true", help="check every file's sha256")
    datasets.add_argument("--download", action="store_true",
                          help="download missing datasets into the cache (default: only list what is found)")
    datasets.set_defaults(handler=_cmd_datasets)

    mixing = commands.add_parser("mixing", help="print the learned α and β of cross-stitch and sluice models")
    mixing.add_argument("run_dir", metavar="RUN_DIR", help="an experiment folder or one model folder")
    mixing.add_argument("--write", action="store_true",
                        help="also write mixing.json/.png into folders that lack them (older runs)")
    mixing.set_defaults(handler=_cmd_mixing)

    clusters = commands.add_parser("clusters", help="print the task clusters of cluster-layer (NCMTL) models")
    clusters.add_argument("run_dir", metavar="RUN_DIR", help="an experiment folder or one model folder")
    clusters.set_defaults(handler=_cmd_clusters)
    branches = commands.add_parser("branches", help="print the branching tree of fully_adaptive (FAFS) models")
    branches.add_argument("run_dir", metavar="RUN_DIR", help="an experiment folder or one model folder")
    branches.set_defaults(handler=_cmd_branches)
    covariance = commands.add_parser(
        "covariance", help="print the task covariance learned by task_covariance (DRN) regularisers")
    covariance.add_argument("run_dir", metavar="RUN_DIR", help="an experiment folder or one model folder")
    covariance.set_defaults(handler=_cmd_covariance)

    describe = commands.add_parser("describe", help="list every registered component and its parameters")
    describe.set_defaults(handler=_cmd_describe)

    study = commands.add_parser("study", help="the 'when does MTL help' meta-study (20 Newsgroups)")
    study.add_argument("study", choices=["20ng", "fdu"],
                       help="20ng: the paper's study; fdu: the same protocol on every ordered pair of the 16 "
                            "FDU-MTL domains, and the meta-model's out-of-corpus validation (docs/meta-study.md)")
    study.add_argument("--protocol", choices=["authors", "cleaned"], default="authors",
                       help="authors: the authors' released Keras code (default); cleaned: our first "
                            "reading of the paper (docs/meta-study.md)")
    study.add_argument("--problem", choices=["related", "unrelated", "both"], default="both")
    study.add_argument("--seeds", type=int, help="seeds per run (default 5; --quick: 1)")
    study.add_argument("--quick", action="store_true",
                       help="1 seed, 20 pairs per problem (cleaned: also 20 multi-task / 30 single-task epochs)")
    study.add_argument("--pairs", type=int, help="keep this many pairs per problem (seeded choice)")
    study.add_argument("--mtl-epochs", type=int, help="epochs of a multi-task run (default 100)")
    study.add_argument("--curve-epochs", type=int, help="epochs of a single-task run (default 150)")
    study.add_argument("--f1-epoch", type=int,
                       help="epoch (1-based) both models are scored at (authors 81 = their epoch 80; cleaned 100)")
    study.add_argument("--eval-every", type=int,
                       help="score every this many epochs (authors 1: any --f1-epoch without training again; "
                            "cleaned 5)")
    study.add_argument("--sample-seed", type=int, help="seed of the training-post draws (default 0)")
    study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="change one setting of the protocol, e.g. --set dropout=0 --set corpus.sampling=per_topic "
                            "--set meta.score=f1 (repeatable; names in docs/meta-study.md)")
    study.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:8786)")
    study.add_argument("--workers", type=int, help="local worker processes (default: the cores)")
    study.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    study.add_argument("--models-per-call", type=int,
                       help="models trained side by side per engine call (default: 1 on a CPU, 64 on a GPU)")
    study.add_argument("--db", metavar="PATH", help="results store (default OUT/study.sqlite)")
    study.add_argument("--out", metavar="DIR",
                       help="output folder (default runs/study-20ng[-authors][-quick])")
    study.add_argument("--meta-runs", type=int, default=100, help="repetitions of the meta-model's 5-fold CV")
    study.add_argument("--export-advisor", metavar="PATH", help="also write the fitted advisor model here")
    study.add_argument("--reference", metavar="DIR",
                       help="fdu: the 20ng study output whose pairs_*.csv the meta-models are fitted on "
                            "(default results/study-20ng-PROTOCOL)")
    study.add_argument("--independent", metavar="CSV",
                       help="fdu: gains of the same pairs measured another way (default "
                            "results/advise-fdu16/gain_matrix.csv, from advise --tasks)")
    study.add_argument("--data-dir", help="dataset folder")
    study.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    study.set_defaults(handler=_cmd_study)

    advise = commands.add_parser("advise", help="predict whether MTL helps a main task with an auxiliary task")
    advise.add_argument("--main", metavar="TASK",
                        help="20ng:TOPIC_A,TOPIC_B | DATASET:TASK[:LABEL_A,LABEL_B] | file:PATH[:LABEL_A,LABEL_B]")
    advise.add_argument("--aux", metavar="TASK", help="the auxiliary task, same forms")
    advise.add_argument("--measure", action="store_true",
                        help="train the pair (single- and multi-task, dev-selected epochs) and print the measured "
                             "gain with a 95%% confidence interval, instead of the meta-model's prediction")
    advise.add_argument("--tasks", nargs="+", metavar="TASK",
                        help="measure the gain matrix of these tasks (every one as main with every other as "
                             "auxiliary) and recommend groupings; writes a heatmap, JSON and CSV to --out")
    advise.add_argument("--model", help="meta-model JSON (default: the one shipped with textmtl)")
    advise.add_argument("--seeds", type=int,
                        help="meta-model: single-task runs per task for the curve features (default 2 with the "
                             "shipped model's features, 1 with a cleaned-protocol model's); "
                             "--measure and --tasks: seeds of every single- and multi-task run (default 5)")
    advise.add_argument("--epochs", type=int, help="--measure/--tasks: epochs of every run (default 15)")
    advise.add_argument("--metric", choices=["accuracy", "macro_f1"], default="accuracy",
                        help="--measure/--tasks: the score selected on (dev) and compared (test)")
    advise.add_argument("--workers", type=int, help="--measure/--tasks: local worker processes (default: the cores)")
    advise.add_argument("--out", help="--tasks: folder of gain_matrix.png/.json/.csv (default runs/advise-tasks); "
                                      "--measure: folder of measure.json")
    advise.add_argument("--no-progress", action="store_true", help="--measure/--tasks: no progress bar")
    advise.add_argument("--top", type=int, default=8, help="features to show")
    advise.add_argument("--data-dir", help="dataset folder")
    advise.set_defaults(handler=_cmd_advise)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, job schedulers), raised where the process is.

    A subclass of KeyboardInterrupt so that every cleanup written for Ctrl-C runs for it
    too: a run folder with finished runs is kept (and named for ``--resume``), one with none
    is removed.
    """


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `run --ddp N` starts torchrun with the rest of the command line
    previous = None
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.handler(args)
    except TextMTLError as error:
        print(f"textmtl: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print("textmtl: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("textmtl: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
