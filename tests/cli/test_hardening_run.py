"""Hardening of ``textmtl run``: no lost runs, no tracebacks for user input, no silent nonsense.

One test (or a few) per case of the hardening issue, numbered as there. Each bad input must
give exit 2, exactly one ``textmtl: error:`` line naming the file or key, what was expected
and what was found, and leave nothing in the output dir (``assert_user_error``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from textmtl.config import load_config
from textmtl.experiment import run_experiment

from cli.test_bad_input import (VENV_TEXTMTL, assert_user_error, config_text, good_rows, run_cli,  # noqa: F401
                                workdir,
                                write_csv)


# ---------------------------------------------------------------- 1. unique run folders

def _quiet(line: str) -> None:
    pass


def test_run_experiment_in_a_loop_keeps_every_run(workdir):
    # the README's API example run four times within one second: four distinct folders
    (workdir / "cfg.yaml").write_text(config_text(), encoding="utf-8")
    config = load_config(workdir / "cfg.yaml")
    config.output_dir, config.training.progress = str(workdir / "runs"), False
    folders = [run_experiment(config, log=_quiet).run_dir for _ in range(4)]
    assert len(set(folders)) == 4
    for folder in folders:
        assert folder.is_dir() and not folder.name.endswith(".partial")
        assert (folder / "results.md").is_file()
        assert json.loads((folder / "hard" / "seed-1" / "metrics.json").read_text())["test"]


def test_concurrent_runs_of_one_config_all_finish(workdir):
    (workdir / "cfg.yaml").write_text(config_text(), encoding="utf-8")
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    command = [str(VENV_TEXTMTL), "run", "cfg.yaml", "--output-dir", "runs", "--no-progress"]
    processes = [subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    finished = sorted(p for p in (workdir / "runs").iterdir())
    assert len(finished) == 3 and not any(p.name.endswith(".partial") for p in finished)


# ---------------------------------------------------------------- 2. SIGTERM and stale folders

def test_sigterm_is_handled_like_ctrl_c(workdir):
    """A SIGTERM mid-training: a message, exit 143, and no half-written folder left behind."""
    (workdir / "cfg.yaml").write_text(
        config_text(training="{max_epochs: 100000, patience: 0}"), encoding="utf-8")
    process = subprocess.Popen([str(VENV_TEXTMTL), "run", "cfg.yaml", "--output-dir", "runs",
                                "--no-progress"], cwd=workdir, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((workdir / "runs").glob("*.partial")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # in the training loop by now
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    # nothing had finished: nothing is kept (with finished runs the folder is kept, below)
    assert list((workdir / "runs").iterdir()) == []


def test_interrupted_run_with_finished_work_is_kept_named_and_resumable(workdir, capsys, monkeypatch):
    from textmtl import experiment

    text = config_text(methods="[single_task, hard]")
    real = experiment.train_one
    calls = []

    def interrupt_second(config, method, *args, **kwargs):
        calls.append(method.name)
        if method.name == "hard":
            raise KeyboardInterrupt
        return real(config, method, *args, **kwargs)

    monkeypatch.setattr(experiment, "train_one", interrupt_second)
    code, out, err = run_cli(workdir, capsys, text)
    assert code == 130 and "incomplete run kept in" in out
    [partial] = list((workdir / "runs").glob("*.partial"))
    monkeypatch.setattr(experiment, "train_one", real)
    # a plain rerun names the stale folder; --resume with no folder continues the newest one
    code, out, err = run_cli(workdir, capsys, text, "--resume")
    assert code == 0, err
    assert f"resuming {partial}" in err
    assert not list((workdir / "runs").glob("*.partial"))


def test_a_new_run_mentions_stale_partial_folders(workdir, capsys):
    (workdir / "runs" / "bad-20260101-000000.partial").mkdir()
    code, _, err = run_cli(workdir, capsys, config_text())
    assert code == 0
    assert "incomplete run(s) of 'bad'" in err and "--resume" in err


def test_resume_without_folder_and_none_to_resume(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(), "--resume")
    assert_user_error(workdir, code, err, "--resume", "no incomplete run of 'bad'")


# ---------------------------------------------------------------- 5-7. silent nonsense

def test_one_class_training_file(workdir, capsys):
    write_csv(workdir / "one.csv", [(f"text {i}", "pos") for i in range(40)])
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: one.csv}",
                                                        baselines="[logreg_per_task]"))
    assert_user_error(workdir, code, err, "one.csv", "one label ('pos')", "at least two")


def test_non_finite_loss_stops_the_run(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(
        training="{max_epochs: 3, lr: 1.0e+30, clip_norm: null, optimizer: sgd}"))
    line = assert_user_error(workdir, code, err, "loss of task 'train'", "at epoch", "step",
                             "diverged", "training.lr is 1e+30")
    assert "nan" in line or "inf" in line


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_infinite_lr_is_a_config_error(workdir, capsys, value):
    code, _, err = run_cli(workdir, capsys, config_text(training=f"{{lr: {value}}}"))
    assert_user_error(workdir, code, err, "'training.lr'", "finite")


def test_all_empty_texts(workdir, capsys):
    write_csv(workdir / "empty.csv", [("", "pos" if i % 2 else "neg") for i in range(40)])
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: empty.csv}"))
    assert_user_error(workdir, code, err, "empty.csv", "every training text", "empty")


def test_empty_user_files_list(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text("user_files: []"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'data.user_files'", "empty list")


# ---------------------------------------------------------------- 8. accepted silently before

def test_duplicate_yaml_key(workdir, capsys):
    text = config_text() + "training: {max_epochs: 2}\n"
    code, _, err = run_cli(workdir, capsys, text)
    assert_user_error(workdir, code, err, "cfg.yaml", "line", "'training' appears twice")


def test_duplicate_nested_yaml_key(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training="{max_epochs: 1, max_epochs: 2}"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'max_epochs' appears twice")


def test_repeated_seed(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(seeds="[1, 1]"))
    assert_user_error(workdir, code, err, "cfg.yaml", "'seeds'", "twice", "[1, 1]")


def test_text_column_equal_to_label_column(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(
        "user_files: {path: train.csv, text_column: label, label_column: label}"))
    assert_user_error(workdir, code, err, "train.csv", "'text_column' and 'label_column'",
                      "'label'")


def test_duplicate_csv_header_column(workdir, capsys):
    write_csv(workdir / "dup.csv", [(t, l, l) for t, l in good_rows()],
              header=("text", "label", "label"))
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: dup.csv}"))
    assert_user_error(workdir, code, err, "dup.csv", "column 'label' twice")


@pytest.mark.parametrize("name", ["a/b", "../escape", ".hidden", ""])
def test_name_must_be_a_folder_name(workdir, capsys, name):
    code, _, err = run_cli(workdir, capsys, config_text(name=json.dumps(name)))
    assert_user_error(workdir, code, err, "cfg.yaml", "'name'", "folder name")
    assert not (workdir / "escape").exists()


# ---------------------------------------------------------------- 9. where the data comes from

def test_explicit_data_dir_that_does_not_exist(workdir, capsys, monkeypatch):
    monkeypatch.setenv("TEXTMTL_DATA_DIR", str(workdir))  # would otherwise be used silently
    text = config_text("trec: {}")
    code, _, err = run_cli(workdir, capsys, text, "--data-dir", str(workdir / "nope"))
    assert_user_error(workdir, code, err, "--data-dir", "nope", "no such folder")


def test_run_says_where_each_dataset_was_found(tmp_path, capsys, monkeypatch):
    from textmtl.data.store import DATASET_INFO

    # a fake trec folder with files of the right sizes is found, and its line is printed
    # before the loader reads (and rejects) the fake content
    info = DATASET_INFO["trec"]
    for file in info.files:
        target = tmp_path / "data" / info.folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x" * file.size)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "cfg.yaml").write_text(config_text("trec: {}"), encoding="utf-8")
    from textmtl.cli import main

    main(["run", "cfg.yaml", "--data-dir", str(tmp_path / "data"), "--no-progress",
          "--output-dir", "runs"])
    out = capsys.readouterr().out
    assert f"data trec: {tmp_path / 'data' / info.folder} (from --data-dir)" in out


# ---------------------------------------------------------------- 10-11. one line, exit 2

@pytest.mark.parametrize("training, key, expected", [
    ("{eval_batch_size: 0}", "eval_batch_size", ">= 1"),
    ("{weight_decay: -1.0}", "weight_decay", ">= 0"),
    ("{momentum: -1.0}", "momentum", "in [0, 1)"),
    ("{threads: -1}", "threads", ">= 1"),
    ("{threads: 0}", "threads", ">= 1"),
])
def test_training_values_out_of_range(workdir, capsys, training, key, expected):
    code, _, err = run_cli(workdir, capsys, config_text(training=training))
    assert_user_error(workdir, code, err, f"'training.{key}'", expected)


def test_negative_seed(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(seeds="[-1]"))
    assert_user_error(workdir, code, err, "'seeds'", ">= 0")


def test_config_path_is_a_directory(workdir, capsys):
    (workdir / "folder.yaml").mkdir()
    code, _, err = run_cli(workdir, capsys, None, config_name="folder.yaml")
    assert_user_error(workdir, code, err, "folder.yaml", "is a folder")


def test_output_dir_is_a_file(workdir, capsys):
    (workdir / "cfg.yaml").write_text(config_text(), encoding="utf-8")
    (workdir / "taken").write_text("a file")
    from textmtl.cli import main

    code = main(["run", "cfg.yaml", "--output-dir", str(workdir / "taken" / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert_user_error(workdir, code, err, "output dir", "taken", "writable folder")


# ---------------------------------------------------------------- 13. long fields

def test_csv_field_over_128_kib_is_read(workdir, capsys):
    rows = good_rows()
    rows[0] = ("long " * 40_000 + rows[0][0], rows[0][1])  # 200 KB in one field
    write_csv(workdir / "long.csv", rows)
    code, out, err = run_cli(workdir, capsys, config_text("user_files: {path: long.csv}"))
    assert code == 0, err


def test_csv_field_over_the_cap_is_one_line(workdir, capsys, monkeypatch):
    from textmtl.data.corpora import user_files

    monkeypatch.setattr(user_files, "MAX_FIELD_CHARS", 1000)
    import csv

    previous = csv.field_size_limit(1000)
    try:
        rows = good_rows()
        rows[3] = ("x" * 5000, rows[3][1])
        write_csv(workdir / "long.csv", rows)
        code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: long.csv}"))
    finally:
        csv.field_size_limit(previous)
    assert_user_error(workdir, code, err, "long.csv", "line", "longer than 1,000 characters")


# ---------------------------------------------------------------- 14. checked before training

def test_component_values_of_a_later_method_are_checked_before_training(workdir, capsys, monkeypatch):
    from textmtl import experiment

    trained = []
    real = experiment.train_one
    monkeypatch.setattr(experiment, "train_one",
                        lambda *a, **k: trained.append(a[1].name) or real(*a, **k))
    code, _, err = run_cli(workdir, capsys, config_text(
        methods="[hard, {name: cross_stitch, self_weight: 2.0}]"))
    assert_user_error(workdir, code, err, "self_weight")
    assert trained == []


def test_subprocess_exit_status_of_a_one_class_file(tmp_path):
    # the real process exit status, not main()'s return value
    write_csv(tmp_path / "one.csv", [(f"text {i}", "pos") for i in range(20)])
    (tmp_path / "cfg.yaml").write_text(config_text("user_files: {path: one.csv}"), encoding="utf-8")
    result = subprocess.run([str(VENV_TEXTMTL), "run", "cfg.yaml", "--output-dir", "runs"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "one label" in result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------- found by fuzzing the above

def test_name_too_long_for_a_folder(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(name="a" * 300))
    assert_user_error(workdir, code, err, "'name'", "at most 200 characters", "300")


def test_span_f1_selection_on_a_classification_task(workdir, capsys):
    code, _, err = run_cli(workdir, capsys, config_text(training="{select_metric: span_f1}"))
    assert_user_error(workdir, code, err, "'training.select_metric'", "'span_f1'", "task 'train'",
                      "accuracy, macro_f1")


def test_texts_without_terms_name_their_file(workdir, capsys):
    # one-letter tokens only: the TF-IDF settings are fine, the texts have no terms
    write_csv(workdir / "letters.csv", [("a b c", "pos" if i % 2 else "neg") for i in range(40)])
    code, _, err = run_cli(workdir, capsys, config_text("user_files: {path: letters.csv}"))
    assert_user_error(workdir, code, err, "no TF-IDF terms", "letters (letters.csv)")
