"""The ``textmtl`` command's non-error behaviour: describe, datasets, --version, run output."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import textmtl
from textmtl.cli import build_parser, main
from textmtl.data.datasets import DATASETS
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.sharing import SHARING
from textmtl.weighting import WEIGHTINGS


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"textmtl {textmtl.__version__}"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["run"], ["run", "c.yaml", "--bogus"]])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: textmtl" in capsys.readouterr().err


def test_describe_lists_every_registered_component_and_parameter(capsys):
    assert main(["describe"]) == 0
    out = capsys.readouterr().out
    sections = {}
    current = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            current = line.rstrip(":")
            sections[current] = []
        elif line.startswith("  ") and not line.startswith("      "):
            sections[current].append(line.split(":")[0].split(" [")[0].strip())
    for title, registry in [("encoders", ENCODERS), ("sharing methods", SHARING),
                            ("loss weightings", WEIGHTINGS), ("task samplers", SAMPLERS),
                            ("featurizers", FEATURIZERS), ("datasets", DATASETS)]:
        assert sections[title] == registry.names(), title
        for name in registry.names():
            for parameter in registry.parameters(name):
                assert f"      {parameter.name}: " in out, (name, parameter.name)
    assert "bilstm [input: tokens]" in out and "mlp [input: tfidf]" in out
    assert "      self_weight: float (default 0.9)" in out
    assert "      path: str (required)" in out  # user_files' required option
    assert "training:" in out
    import dataclasses
    from textmtl.training.config import TrainingConfig
    training = out.split("\ntraining:\n", 1)[1]
    assert [line.split(":")[0].strip() for line in training.splitlines()] == [
        f.name for f in dataclasses.fields(TrainingConfig)]


def test_describe_training_types_are_readable(capsys):
    assert main(["describe"]) == 0
    out = capsys.readouterr().out
    assert "<class" not in out
    assert "      lr: float (default 0.001)" in out


def test_datasets_with_nothing_found_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TEXTMTL_DATA_DIR", raising=False)
    monkeypatch.setenv("TEXTMTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXTMTL_DOWNLOAD_BASE", "http://127.0.0.1:9")
    (tmp_path / "empty").mkdir()
    assert main(["datasets", "--data-dir", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out.splitlines()
    names = [n for n in DATASETS.names() if n != "user_files"]
    assert [line.split(":")[0] for line in out] == names
    # listing never downloads: a missing dataset says how to get it
    assert all(line.endswith(": not found (run textmtl datasets --download, or set --data-dir)")
               for line in out)


def test_datasets_lists_real_data(capsys):
    value = os.environ.get("TEXTMTL_DATA_DIR")
    if not value:
        pytest.skip("TEXTMTL_DATA_DIR not set: listing the built-in datasets needs the real data")
    assert main(["datasets", "--data-dir", value]) == 0
    out = capsys.readouterr().out
    assert f"fdu_mtl: found in {Path(value) / 'fdu-mtl'} (data_dir)" in out
    assert ("  books [classification]: train 1400 / dev 200 / test 400, unlabeled 2000; "
            "labels: negative, positive") in out
    assert "conll2000_chunk [tagging]" in out


def test_run_prints_table_timings_and_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with open("reviews.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(40):
            writer.writerow([f"w{i % 9} {'great' if i % 2 else 'awful'}", "pos" if i % 2 else "neg"])
    Path("c.yaml").write_text("name: cli\ndata:\n  user_files: {path: reviews.csv}\n"
                              "features: {min_df: 1}\nencoder: {name: mlp, hidden_dims: [4]}\n"
                              "methods: [hard]\nseeds: [1]\ntraining: {max_epochs: 1}\n"
                              "output_dir: from_config\n")
    assert main(["run", "c.yaml", "--no-progress", "--set", "output_dir=from_set"]) == 0
    out = capsys.readouterr().out
    runs = list(Path("from_set").iterdir())
    assert len(runs) == 1 and not Path("from_config").exists()
    assert out.rstrip().splitlines()[-1] == f"run folder: {runs[0]}"
    assert "| task | hard |" in out and "| reviews |" in out
    assert "timings (s): featurize_s" in out
    # --output-dir wins over the config and --set
    assert main(["run", "c.yaml", "--no-progress", "--set", "output_dir=from_set",
                 "--output-dir", "from_flag"]) == 0
    assert len(list(Path("from_flag").iterdir())) == 1 and len(list(Path("from_set").iterdir())) == 1


def test_module_entry_point_runs_describe():
    done = subprocess.run([sys.executable, "-m", "textmtl.cli", "describe"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert "sharing methods:" in done.stdout


def test_parser_has_documented_commands():
    parser = build_parser()
    args = parser.parse_args(["run", "x.yaml", "--set", "a=1", "--set", "b=2", "--data-dir", "d"])
    assert args.set == ["a=1", "b=2"] and args.data_dir == "d" and args.config == "x.yaml"
