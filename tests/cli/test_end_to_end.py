"""End to end through ``textmtl run``: the run folder, reloadable checkpoints, the table.

(a) a tiny synthetic experiment from the user's CSV files (always runs);
(b) the real FDU-MTL main config, shortened by ``--set`` (needs ``TEXTMTL_DATA_DIR``);
(c) CoNLL-2000 chunk + POS tagging with a token-level BiLSTM (needs ``TEXTMTL_DATA_DIR``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import textmtl
from textmtl.cli import main
from textmtl.config import load_config
from textmtl.experiment import build_model, featurize, git_hash, load_experiment_tasks
from textmtl.training.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


def real_data_dir() -> Path:
    value = os.environ.get("TEXTMTL_DATA_DIR")
    if not value:
        pytest.skip("TEXTMTL_DATA_DIR not set: the real-data end-to-end runs need the datasets "
                    "(e.g. TEXTMTL_DATA_DIR=../shared/data)")
    return Path(value)


def write_task_csv(path: Path, cues: dict[str, list[str]], rows: int, seed: int) -> None:
    """Rows of filler words plus one or two cue words of the row's label (learnable)."""
    rng = random.Random(seed)
    labels = list(cues)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = labels[i % len(labels)]
            words = [f"filler{rng.randrange(25)}" for _ in range(rng.randint(4, 12))]
            for _ in range(rng.randint(1, 2)):
                words.insert(rng.randrange(len(words) + 1), rng.choice(cues[label]))
            writer.writerow([" ".join(words), label])


@pytest.fixture
def two_file_dataset(monkeypatch):
    """A test-only dataset of two user CSV files, each one task (``user_files`` loads one).

    Registered for the test and removed afterwards; it resolves to the working directory like
    ``user_files``.
    """
    from textmtl.data import store
    from textmtl.data.corpora.user_files import load_user_files
    from textmtl.data.datasets import DATASETS

    name = "test_user_file_pair"

    def load(root: Path, *, first: str, second: str, seed: int = 0):
        return (load_user_files(root, path=first, seed=seed, dev_fraction=0.2, test_fraction=0.25)
                + load_user_files(root, path=second, seed=seed, dev_fraction=0.2, test_fraction=0.25))

    DATASETS.register(name)(load)
    monkeypatch.setattr(store, "USER_DATASETS", store.USER_DATASETS | {name})
    try:
        yield name
    finally:
        DATASETS._entries.pop(name, None)


def only_run_folder(output: Path) -> Path:
    entries = list(output.iterdir())
    assert len(entries) == 1, entries
    assert not entries[0].name.endswith(".partial")
    return entries[0]


def parse_cell(cell: str) -> tuple[float, float]:
    match = re.fullmatch(r"(-?[\d.]+)(?: ± ([\d.]+))?", cell)
    assert match, cell
    return float(match.group(1)), float(match.group(2) or 0.0)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ---------------------------------------------------------------- (a) synthetic, from CSV files

def test_synthetic_user_files_run(tmp_path, monkeypatch, capsys, two_file_dataset):
    monkeypatch.chdir(tmp_path)
    write_task_csv(tmp_path / "moods.csv", {"happy": ["glad", "joy"], "sad": ["gloom", "tears"]}, 60, 1)
    write_task_csv(tmp_path / "topics.csv", {"sport": ["goal", "match"], "tech": ["cpu", "code"],
                                             "food": ["soup", "bread"]}, 66, 2)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump({
        "name": "tiny",
        "data": {two_file_dataset: {"first": str(tmp_path / "moods.csv"),
                                    "second": str(tmp_path / "topics.csv")}},
        "features": {"min_df": 1, "max_features": 300, "ngram_max": 1},
        "encoder": {"name": "mlp", "hidden_dims": [16]},
        "methods": ["single_task", "hard", {"name": "cross_stitch", "self_weight": 0.9}],
        "seeds": [1, 2],
        "training": {"max_epochs": 5, "lr": 0.02, "batch_size": 8, "patience": 0},
    }, sort_keys=False))
    overrides = ["training.max_epochs=3", "methods.2.self_weight=0.8"]
    output = tmp_path / "runs"
    argv = ["run", str(config_path), "--output-dir", str(output), "--no-progress"]
    for assignment in overrides:
        argv += ["--set", assignment]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    run = only_run_folder(output)
    assert re.fullmatch(r"tiny-\d{8}-\d{6}", run.name)
    assert f"run folder: {run}" in stdout

    # the resolved config: what the CLI ran (overrides, output dir, progress off) and reloadable
    expected = load_config(config_path, overrides)
    expected.output_dir = str(output)
    expected.training.progress = False
    stored = load_config(run / "config.yaml")
    assert stored == expected
    assert stored.training.max_epochs == 3 and stored.methods[2].params == {"self_weight": 0.8}

    meta = json.loads((run / "meta.json").read_text())
    assert meta["version"] == textmtl.__version__
    assert meta["git_hash"] == git_hash() and re.fullmatch(r"[0-9a-f]{40}|unknown", meta["git_hash"])
    assert meta["seeds"] == [1, 2]

    tasks = ["moods", "topics"]
    methods = ["single_task", "hard", "cross_stitch"]
    records = json.loads((run / "records.json").read_text())
    assert sorted((r["method"], r["seed"], r["task"]) for r in records) == sorted(
        (m, s, t) for m in methods for s in (1, 2) for t in tasks)

    # the table: one row per task + average, one column per method, Δ vs single-task
    table = read_csv(run / "results.csv")
    assert table[0] == ["task", *methods, "Δ hard", "Δ cross_stitch"]
    assert [row[0] for row in table[1:]] == [*tasks, "average"]
    markdown = (run / "results.md").read_text(encoding="utf-8")
    for row in table:
        assert "| " + " | ".join(row) + " |" in markdown
    assert markdown in stdout  # the terminal shows the same table

    # how the trainings ended: one row per method, single-task counted per task and seed
    training = (run / "training.md").read_text(encoding="utf-8")
    assert "| single_task | 4 |" in training and "| hard | 2 |" in training
    assert "| cross_stitch | 2 |" in training

    # mean ± std recomputed from records.json
    accuracy = {(r["method"], r["seed"], r["task"]): 100 * r["test"]["accuracy"] for r in records}
    for row in table[1:]:
        for column, method in enumerate(methods, start=1):
            if row[0] == "average":
                values = [np.mean([accuracy[(method, s, t)] for t in tasks]) for s in (1, 2)]
            else:
                values = [accuracy[(method, s, row[0])] for s in (1, 2)]
            mean, std = parse_cell(row[column])
            assert mean == pytest.approx(np.mean(values), abs=0.006)
            assert std == pytest.approx(np.std(values, ddof=1), abs=0.006)

    # per method / seed (/ task) folders; checkpoints reproduce the recorded test metrics
    config = stored
    data = featurize(config, load_experiment_tasks(config, None))
    by_key = {(r["method"], r["seed"], r["task"]): r for r in records}
    for method in config.methods:
        for seed in (1, 2):
            folders = ([(run / method.name / f"seed-{seed}" / t, [t]) for t in tasks]
                       if method.name == "single_task" else [(run / method.name / f"seed-{seed}", tasks)])
            for folder, folder_tasks in folders:
                metrics = json.loads((folder / "metrics.json").read_text())
                curves = json.loads((folder / "curves.json").read_text())
                assert len(curves) == 3 and 1 <= metrics["best_epoch"] <= 3
                assert curves[metrics["best_epoch"] - 1]["dev"] == metrics["dev"]
                sub = data.subset(folder_tasks)
                model = build_model(method, config.encoder, sub, seed=123)
                model.load_state_dict(torch.load(folder / "checkpoint.pt", map_location="cpu"))
                test = evaluate(model, sub, "test", CPU)
                for task in folder_tasks:
                    assert metrics["test"][task] == by_key[(method.name, seed, task)]["test"]
                    assert test[task]["accuracy"] == pytest.approx(metrics["test"][task]["accuracy"])
                    assert test[task]["macro_f1"] == pytest.approx(metrics["test"][task]["macro_f1"])
    # the cue words make the tasks learnable: every method is far above chance on average
    for column in range(1, 4):
        assert parse_cell(table[-1][column])[0] > 70.0, table


def test_two_user_files_tasks_in_one_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_task_csv(tmp_path / "a.csv", {"x": ["xx"], "y": ["yy"]}, 40, 1)
    write_task_csv(tmp_path / "b.csv", {"x": ["xx"], "y": ["yy"]}, 40, 2)
    (tmp_path / "c.yaml").write_text(
        "name: pair\ndata:\n  user_files: [{path: a.csv}, {path: b.csv}]\n"
        "features: {min_df: 1}\nencoder: {name: mlp, hidden_dims: [4]}\nmethods: [hard]\n"
        "seeds: [1]\ntraining: {max_epochs: 1}\n")
    assert main(["run", "c.yaml", "--output-dir", "runs", "--no-progress"]) == 0
    records = json.loads((only_run_folder(tmp_path / "runs") / "records.json").read_text())
    assert {r["task"] for r in records} == {"a", "b"}


# ---------------------------------------------------------------- (b) FDU-MTL main config

def test_fdu_mtl_main_config_short(tmp_path, capsys):
    data_dir = real_data_dir()
    argv = ["run", str(ROOT / "configs" / "fdu_mtl_tfidf_mlp.yaml"), "--output-dir", str(tmp_path),
            "--no-progress", "--data-dir", str(data_dir),
            "--set", "data.fdu_mtl.domains=[books, dvd, kitchen_housewares]",
            "--set", "seeds=[1]", "--set", "training.max_epochs=3",
            "--set", "methods=[single_task, hard]", "--set", "features.max_features=3000",
            "--set", "encoder.hidden_dims=[50]"]
    assert main(argv) == 0
    run = only_run_folder(tmp_path)
    table = read_csv(run / "results.csv")
    header = table[0]
    assert header[:3] == ["task", "single_task", "hard"]
    assert header[-1] == "paper (accuracy)"
    assert {"logreg_per_task", "logreg_pooled"} <= set(header)
    rows = {row[0]: row for row in table[1:]}
    assert list(rows) == ["books", "dvd", "kitchen_housewares", "average"]
    paper = {"books": "84.0", "dvd": "85.5", "kitchen_housewares": "86.2", "average": "86.1"}
    for task, row in rows.items():
        assert row[-1] == paper[task]
        for method in ("single_task", "hard", "logreg_per_task", "logreg_pooled"):
            value = parse_cell(row[header.index(method)])[0]
            assert value > 60.0, f"{method} on {task}: {value}"
    assert "paper: ASP-MTL" in (run / "results.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- (c) CoNLL-2000 tagging

def test_conll2000_tagging_bilstm(tmp_path, capsys):
    data_dir = real_data_dir()
    # conll2000 has no subset option; a large dev block leaves a small training set
    (tmp_path / "tag.yaml").write_text(
        "name: conll_tag\n"
        "data:\n  conll2000: {tasks: [chunk, pos], dev_sentences: 7700}\n"
        "features: {max_length: 60}\n"
        "encoder: {name: bilstm, embedding_dim: 32, hidden_dim: 32, pooling: none}\n"
        "methods: [hard]\nseeds: [1]\n"
        "training: {max_epochs: 2, lr: 0.02, batch_size: 16, patience: 0}\n")
    assert main(["run", str(tmp_path / "tag.yaml"), "--output-dir", str(tmp_path / "runs"),
                 "--no-progress", "--data-dir", str(data_dir)]) == 0
    run = only_run_folder(tmp_path / "runs")
    records = {r["task"]: r for r in json.loads((run / "records.json").read_text())}
    assert set(records) == {"conll2000_chunk", "conll2000_pos"}
    config = load_config(run / "config.yaml")
    for task in load_experiment_tasks(config, str(data_dir)):
        assert task.kind == "tagging"
        tags = [tag for row in task.test.labels for tag in row]
        majority = np.bincount(tags).max() / len(tags)
        accuracy = records[task.name]["test"]["accuracy"]
        assert accuracy > majority + 0.1, f"{task.name}: {accuracy:.3f} vs majority {majority:.3f}"
    metrics = json.loads((run / "hard" / "seed-1" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"conll2000_chunk", "conll2000_pos"}


def test_methods_with_their_own_encoders_in_one_table(tmp_path, monkeypatch, capsys):
    """A method entry may name its own encoder (and features): each trains on features of its
    encoder's input kind, its model folder says which, and the table holds every row."""
    monkeypatch.chdir(tmp_path)
    write_task_csv(tmp_path / "a.csv", {"x": ["xx"], "y": ["yy"]}, 40, 1)
    write_task_csv(tmp_path / "b.csv", {"x": ["xx"], "y": ["yy"]}, 40, 2)
    (tmp_path / "c.yaml").write_text(
        "name: mixed\ndata:\n  user_files: [{path: a.csv}, {path: b.csv}]\n"
        "features: {min_df: 1, max_features: 50}\nencoder: {name: mlp, hidden_dims: [4]}\n"
        "methods:\n  - hard\n"
        "  - {name: hard, label: hard_lstm, encoder: {name: bilstm, embedding_dim: 4, hidden_dim: 3}}\n"
        "  - {name: single_task, label: st_cnn, encoder: {name: textcnn, embedding_dim: 4, num_filters: 2},\n"
        "     features: {max_vocab: 7}}\n"
        "seeds: [1]\ntraining: {max_epochs: 1}\n")
    assert main(["run", "c.yaml", "--output-dir", "runs", "--no-progress"]) == 0
    run = only_run_folder(tmp_path / "runs")
    records = json.loads((run / "records.json").read_text())
    assert {r["method"] for r in records} == {"hard", "hard_lstm", "st_cnn"}

    def saved(folder):
        return (json.loads((folder / "model.json").read_text())["encoder"]["name"],
                json.loads((folder / "featurizer.json").read_text()))

    name, featurizer = saved(run / "hard" / "seed-1")
    assert (name, featurizer["kind"]) == ("mlp", "tfidf") and len(featurizer["state"]["vocabulary"]) <= 50
    name, featurizer = saved(run / "hard_lstm" / "seed-1")
    assert (name, featurizer["kind"]) == ("bilstm", "tokens")
    name, featurizer = saved(run / "st_cnn" / "seed-1" / "a")
    assert (name, featurizer["kind"]) == ("textcnn", "tokens")
    assert featurizer["state"]["settings"]["max_vocab"] == 7  # its own features
    # a model of an entry with its own encoder predicts (the entry's keys are not the method's)
    (tmp_path / "new.txt").write_text("xx xx xx\nyy yy\n")
    capsys.readouterr()
    assert main(["predict", str(run / "hard_lstm" / "seed-1"), "new.txt", "--task", "a"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    # a bad encoder of a method entry is a config error naming the entry
    (tmp_path / "bad.yaml").write_text((tmp_path / "c.yaml").read_text().replace("hidden_dim: 3", "hidden: 3"))
    assert main(["run", "bad.yaml", "--output-dir", "runs", "--no-progress"]) != 0
    assert "methods.1.encoder" in capsys.readouterr().err
