"""Start a run folder of one config with finished (method, seed) runs of another, when identical.

A table that repeats a column of another table (the sluice ablation's `alpha_mixture_subspaces`
is Table 3's `sluice`, entry for entry) need not train it again. This copies the finished model
folders of one method of a SOURCE run folder into a run folder of the TARGET config, under the
target's label, after checking that the two trainings are the same: data, features, encoder,
weighting, sampler and training settings equal (those a resume may change aside), and the two
method entries equal except their labels. Each copied folder gets a `reused.json` naming where
it came from. Then `textmtl run TARGET --resume FOLDER` trains the rest of the target table.

Usage:
    python scripts/reuse_runs.py SOURCE_RUN_DIR SOURCE_METHOD TARGET_CONFIG TARGET_METHOD \\
        [--set KEY=VALUE ...] [--output-dir results/runs] [--into TARGET_RUN_DIR]

Without --into, the newest `.partial` folder of the target config under --output-dir is used,
or a new one is made (its `config.yaml` written as `textmtl run` writes it). Prints the folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

#: top-level config keys whose equality makes two trainings of one method entry the same
SAME_TRAINING = ("data", "features", "encoder", "weighting", "sampler", "training",
                 "unlabelled_in_vocabulary")


def _made_with(folder: Path, target: dict) -> bool:
    """Whether ``folder``'s config.yaml is ``target`` (changes a resume allows aside)."""
    from textmtl.experiment import _differences

    try:
        saved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(saved, dict) and not _differences(saved, target)


def _entry(config: dict, title: str, where: str) -> dict:
    for entry in config["methods"]:
        if entry.get("label", entry["name"]) == title:
            return {k: v for k, v in entry.items() if k != "label"}
    raise SystemExit(f"{where}: no method entry named {title!r}; entries: "
                     f"{', '.join(e.get('label', e['name']) for e in config['methods'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("source_method")
    parser.add_argument("target_config")
    parser.add_argument("target_method")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--into", type=Path, default=None)
    args = parser.parse_args(argv)

    from textmtl.config import load_config
    from textmtl.experiment import PARTIAL, RESUMABLE_CHANGES, _claim_folder, _differences, _finished

    try:
        source = yaml.safe_load((args.source / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"{args.source}/config.yaml: expected a run folder's config ({error})") from None
    config = load_config(args.target_config, args.overrides +
                         ([f"output_dir={args.output_dir}"] if args.output_dir else []))
    target = config.to_dict()
    differences = [d for d in _differences({k: source.get(k) for k in SAME_TRAINING},
                                           {k: target.get(k) for k in SAME_TRAINING})
                   if tuple(d.split(".")) not in RESUMABLE_CHANGES]
    differences += [f"methods.{d}" for d in _differences(
        _entry(source, args.source_method, str(args.source)),
        _entry(target, args.target_method, args.target_config))]
    if differences:
        raise SystemExit(f"{args.source} and {args.target_config} do not train "
                         f"{args.source_method!r} / {args.target_method!r} alike (at "
                         f"{', '.join(differences[:4])}); nothing copied")

    folder = args.into
    if folder is None:
        # the newest unfinished folder made with exactly this config, never the source: a
        # corrected config keeps the name of the table it fixes, so folders of the same name
        # may hold other configs
        partial = [p for p in sorted(Path(config.output_dir).glob(f"{config.name}-*{PARTIAL}"))
                   if p.resolve() != args.source.resolve() and _made_with(p, target)]
        folder = partial[-1] if partial else _claim_folder(config)
    if folder.resolve() == args.source.resolve():
        raise SystemExit(f"--into {folder}: that is the source folder; name another")
    if not (folder / "config.yaml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(target, sort_keys=False))
    seeds = sorted(set(source["seeds"]) & set(target["seeds"]))
    copied = 0
    for seed in seeds:
        origin = args.source / args.source_method / f"seed-{seed}"
        # a model folder, or (a method training each task alone) one model folder per task
        units = [origin] if (origin / "metrics.json").is_file() else \
            sorted(p for p in origin.glob("*") if p.is_dir() and (p / "metrics.json").is_file())
        for unit in units:
            destination = folder / args.target_method / unit.relative_to(args.source / args.source_method)
            if _finished(unit) is None or _finished(destination) is not None:
                continue  # nothing finished to copy, or the target already has it
            temporary = destination.with_name(destination.name + ".copying")
            shutil.rmtree(temporary, ignore_errors=True)
            shutil.copytree(unit, temporary, ignore=shutil.ignore_patterns("*.tmp"))
            (temporary / "reused.json").write_text(json.dumps(
                {"from": str(unit), "as": args.target_method, "source_method": args.source_method},
                indent=1))
            shutil.rmtree(destination, ignore_errors=True)  # an unfinished attempt
            temporary.rename(destination)  # all or nothing: a half copy never looks finished
            copied += 1
            print(f"{unit} -> {destination}", flush=True)
    print(f"{copied} finished run(s) copied into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
