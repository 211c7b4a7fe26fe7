"""Bad input through the real ``textmtl`` command: exit status 2, one error line, no run folder.

Every case runs ``textmtl run`` in-process (``textmtl.cli.main``) and checks:

- the exit status is 2;
- stderr is exactly one line starting ``textmtl: error:`` that names the file or key, what was
  expected and what was found (checked per case with substrings);
- the output dir is still empty: no run folder and no ``*.partial`` folder.

One case runs the installed command in a subprocess to check the real process exit status.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from textmtl.cli import main

VENV_TEXTMTL = Path(sys.executable).with_name("textmtl")


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def good_rows(n: int = 40, labels=("neg", "pos")) -> list[tuple[str, str]]:
    cues = {"neg": "awful", "pos": "great", "neutral": "meh"}
    return [(f"w{i % 7} {cues[labels[i % len(labels)]]} w{i % 5}", labels[i % len(labels)])
            for i in range(n)]


def isolate(tmp_path: Path, monkeypatch) -> Path:
    """Make ``tmp_path`` the cwd, with no real data dir, a tmp cache and downloads aimed at a
    closed port (no network)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TEXTMTL_DATA_DIR", raising=False)
    monkeypatch.setenv("TEXTMTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXTMTL_DOWNLOAD_BASE", "http://127.0.0.1:9")
    return tmp_path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A tmp folder with a valid user data file; the cwd, and no real data dir in sight."""
    isolate(tmp_path, monkeypatch)
    write_csv(tmp_path / "train.csv", good_rows())
    (tmp_path / "runs").mkdir()
    return tmp_path


def config_text(data: str = "user_files: {path: train.csv}", **sections: str) -> str:
    """A valid tiny config; ``sections`` replace or add top-level YAML sections (raw text)."""
    parts = {
        "name": "bad",
        "data": "\n  " + data,
        "encoder": "{name: mlp, hidden_dims: [4]}",
        "features": "{min_df: 1, max_features: 50}",
        "methods": "[hard]",
        "seeds": "[1]",
        "training": "{max_epochs: 1}",
    }
    parts.update(sections)
    return "".join(f"{key}: {value}\n" for key, value in parts.items() if value is not None)


def run_cli(workdir: Path, capsys, text: str | None, *extra: str, config_name: str = "cfg.yaml"):
    config = workdir / config_name
    if text is not None:
        config.write_text(text, encoding="utf-8")
    code = main(["run", str(config), "--output-dir", str(workdir / "runs"), "--no-progress", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(workdir: Path, code: int, err: str, *fragments: str) -> str:
    lines = err.splitlines()
    assert code == 2, f"exit status {code}, stderr: {err!r}"
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("textmtl: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    leftovers = sorted(p.name for p in (workdir / "runs").iterdir())
    assert leftovers == [], f"the failed run left {leftovers} in the output dir"
    return line


# ---------------------------------------------------------------- config keys and types

def test_unknown_top_level_key(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(colour="blue"))
    assert_user_error(workdir, code, err, "cfg.yaml", "unknown key 'colour'", "valid keys:",
                      "training", "methods")


def test_unknown_key_inside_training(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training="{max_epochs: 1, learning_rate: 0.1}"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'training.learning_rate'", "valid keys:",
                      "lr", "max_epochs")


def test_training_lr_wrong_type(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training='{lr: "fast"}'))
    assert_user_error(workdir, code, err, "cfg.yaml", "'training.lr'", "float", "'fast'")


def test_seeds_wrong_type(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(seeds="one"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'seeds'", "list[int]", "'one'")


def test_unknown_encoder(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(encoder="{name: transformer}"))
    assert_user_error(workdir, code, err, "cfg.yaml", "unknown encoder 'transformer'",
                      "expected one of:", "mlp", "bilstm")


def test_unknown_sharing_method(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(methods="[hard, sluicey]"))
    assert_user_error(workdir, code, err, "cfg.yaml", "unknown sharing 'sluicey'",
                      "expected one of:", "cross_stitch", "single_task")


def test_unknown_sampler(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(sampler="lottery"))
    assert_user_error(workdir, code, err, "cfg.yaml", "unknown sampler 'lottery'",
                      "expected one of:", "proportional", "every_task")


def test_unknown_encoder_parameter(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(encoder="{name: mlp, hidden: 3}"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'encoder.hidden'", "encoder 'mlp'",
                      "valid keys:", "hidden_dims", "dropout")


def test_component_value_rejected_by_constructor(workdir, capsys):
    # raised while the run folder already exists (the model is built in the training loop)
    code, _, err = run_cli(workdir, capsys, config_text(methods="[{name: cross_stitch, self_weight: 2.0}]"))
    assert_user_error(workdir, code, err, "self_weight", "[0, 1]", "2.0")


def test_bad_device_raised_during_training_leaves_nothing(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training="{max_epochs: 1, device: tpu}"))
    assert_user_error(workdir, code, err, "'training.device'", "cpu", "'tpu'")


def test_select_on_unknown_task(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training="{max_epochs: 1, select_on: trian}"))
    assert_user_error(workdir, code, err, "'training.select_on'", "'trian'", "train")


def test_fixed_weights_unknown_task(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(weighting="{name: fixed, weights: {trian: 2.0}}"))
    assert_user_error(workdir, code, err, "weights", "'trian'", "train")


def test_tfidf_min_df_too_high(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(features="{min_df: 1000}"))
    assert_user_error(workdir, code, err, "min_df", "1000")


# ---------------------------------------------------------------- --set

@pytest.mark.parametrize("assignment,fragments", [
    ("training.lr", ["--set expects key=value", "'training.lr'"]),
    ("methods.7.self_weight=0.8", ["--set methods.7.self_weight", "list index below 1"]),
    ("training.lr=[0.1", ["--set training.lr", "not valid YAML", "'[0.1'"]),
    ("training.lr=fast", ["'training.lr'", "float", "'fast'"]),
])
def test_malformed_set(workdir, capsys, assignment, fragments):
    code, _, err = run_cli(workdir, capsys, config_text(), "--set", assignment)
    assert_user_error(workdir, code, err, *fragments)


# ---------------------------------------------------------------- config files

def test_missing_config_file(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, None, config_name="nowhere.yaml")
    assert_user_error(workdir, code, err, "nowhere.yaml", "not found")


def test_invalid_yaml(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, "name: bad\nmethods: [hard\nseeds: [1]\n")
    assert_user_error(workdir, code, err, "cfg.yaml", "line", "invalid YAML")


def test_empty_config(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, "# nothing here\n")
    assert_user_error(workdir, code, err, "cfg.yaml", "empty", "expected a YAML mapping")


def test_config_not_a_mapping(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, "- just\n- a list\n")
    assert_user_error(workdir, code, err, "cfg.yaml", "expected a YAML mapping", "list")


# ---------------------------------------------------------------- user data files

def test_csv_missing_label_column(workdir, capsys):
    write_csv(workdir / "stars.csv", [("good w1", "5"), ("bad w2", "1")] * 10, header=("text", "stars"))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: stars.csv}"))
    assert_user_error(workdir, code, err, "stars.csv", "missing column 'label'",
                      "found columns: text, stars")


def test_empty_dev_file(workdir, capsys):
    write_csv(workdir / "dev.csv", [])
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: train.csv, dev_path: dev.csv}"))
    assert_user_error(workdir, code, err, "dev.csv", "no examples", "after the header")


def test_holdout_fraction_leaves_empty_split(workdir, capsys):
    write_csv(workdir / "tiny.csv", good_rows(4))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: tiny.csv}"))
    assert_user_error(workdir, code, err, "tiny.csv", "cannot hold out", "4 examples")


def test_test_label_unseen_in_training(workdir, capsys):
    write_csv(workdir / "test.csv", good_rows(6, labels=("pos", "neutral")))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: train.csv, test_path: test.csv}"))
    assert_user_error(workdir, code, err, "test.csv", "'neutral'", "not seen in training",
                      "'neg'", "'pos'")


def test_dev_label_unseen_in_training(workdir, capsys):
    write_csv(workdir / "dev.csv", good_rows(6, labels=("neutral", "pos")))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: train.csv, dev_path: dev.csv}"))
    assert_user_error(workdir, code, err, "dev.csv", "'neutral'", "not seen in training")


def test_undecodable_bytes(workdir, capsys):
    data = (workdir / "train.csv").read_bytes().split(b"\n")
    data[3] = data[3][:5] + b"\xff" + data[3][5:]
    (workdir / "latin.csv").write_bytes(b"\n".join(data))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: latin.csv}"))
    assert_user_error(workdir, code, err, "latin.csv", "line 4", "not valid UTF-8", "0xff")


def test_malformed_jsonl_line(workdir, capsys):
    lines = [f'{{"text": "w{i} great", "label": "pos"}}' for i in range(20)]
    lines[2] = '{"text": "w2 great" "label": "pos"}'
    (workdir / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: reviews.jsonl}"))
    assert_user_error(workdir, code, err, "reviews.jsonl", "line 3", "not valid JSON")


def test_missing_user_file(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: absent.csv}"))
    assert_user_error(workdir, code, err, "absent.csv", "not found")


def test_dataset_not_found(workdir, capsys):
    empty = workdir / "empty-data"
    empty.mkdir()
    code, _, err = run_cli(workdir, capsys, config_text("trec: {}"), "--data-dir", str(empty))
    line = assert_user_error(workdir, code, err, "dataset 'trec' not found", "looked in:",
                             str(empty), "TEXTMTL_DATA_DIR", str(workdir / "cache"),
                             "http://127.0.0.1:9")
    assert "Traceback" not in line
    # the failed download left nothing in the cache either
    assert not any(p.is_file() for p in (workdir / "cache").rglob("*"))


# ---------------------------------------------------------------- the real process

def test_real_process_exit_status_and_single_line(workdir):
    (workdir / "cfg.yaml").write_text(config_text(training='{lr: "fast"}'), encoding="utf-8")
    command = ([str(VENV_TEXTMTL)] if VENV_TEXTMTL.exists()
               else [sys.executable, "-m", "textmtl.cli"])
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run(command + ["run", "cfg.yaml", "--output-dir", "runs", "--no-progress"],
                          cwd=workdir, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("textmtl: error: ") and "'training.lr'" in lines[0] and "'fast'" in lines[0]
    assert "Traceback" not in done.stderr
    assert list((workdir / "runs").iterdir()) == []


def test_real_process_data_error(workdir):
    write_csv(workdir / "stars.csv", [("good w1", "5")] * 10, header=("text", "stars"))
    (workdir / "cfg.yaml").write_text(config_text("user_files: {path: stars.csv}"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "textmtl.cli", "run", "cfg.yaml",
                           "--output-dir", "runs", "--no-progress"],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "textmtl: error: stars.csv: missing column 'label'; found columns: text, stars"]
    assert list((workdir / "runs").iterdir()) == []


def test_pooled_baseline_needs_one_label_space(workdir, capsys):
    write_csv(workdir / "three.csv", good_rows(45, ("neg", "pos", "neutral")))
    code, _, err = run_cli(workdir, capsys, config_text(
        data="user_files: [{path: train.csv}, {path: three.csv}]", baselines="[logreg_pooled]"))
    assert_user_error(workdir, code, err, "'logreg_pooled'", "label space", "2 different")
