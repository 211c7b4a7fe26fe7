"""Run folders are models: load, predict and evaluate; interrupted runs resume.

Tiny user-file tasks (CSV in a tmp folder), so every encoder x sharing method is checked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import textmtl
from textmtl import experiment
from textmtl.cli import main
from textmtl.config import parse_config
from textmtl.errors import ConfigError
from textmtl.experiment import run_experiment
from textmtl.sharing import SHARING

from core.helpers import ENCODER_NAMES, TINY_ENCODER_PARAMS, TINY_FEATURE_PARAMS
from cli.test_bad_input import write_csv

CUES = {"neg": "awful", "pos": "great", "meh": "so-so"}


def rows(n, labels, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = [f"w{int(j)}" for j in rng.integers(0, 9, size=int(rng.integers(3, 9)))]
        words.insert(int(rng.integers(len(words))), CUES[label])
        out.append((" ".join(words) + " .", label))
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "a.csv", rows(60, ("neg", "pos"), 1))
    write_csv(tmp_path / "b.csv", rows(60, ("neg", "pos", "meh"), 2))
    return tmp_path


def config_for(encoder: str, methods: list, seeds=(1,), epochs=2):
    kind = __import__("textmtl.encoders", fromlist=["ENCODERS"]).ENCODERS.get(encoder).input_kind
    features = dict(TINY_FEATURE_PARAMS.get(kind, {}))
    if kind == "tfidf":
        features = {"min_df": 1, "max_features": 100}
    return parse_config({
        "name": "tiny", "output_dir": "runs",
        "data": {"user_files": [{"path": "a.csv", "name": "alpha", "dev_fraction": 0.25, "test_fraction": 0.25},
                                {"path": "b.csv", "name": "beta", "dev_fraction": 0.25, "test_fraction": 0.25}]},
        "features": features, "encoder": {"name": encoder, **TINY_ENCODER_PARAMS.get(encoder, {})},
        "methods": methods, "seeds": list(seeds),
        "training": {"max_epochs": epochs, "patience": 0, "batch_size": 8, "progress": False}})


def plain_methods():
    # methods that train on labelled rows with the default sampler
    return [m for m in SHARING.names() if not SHARING.get(m).needs_unlabelled_rows
            and not SHARING.get(m).needs_collections]


@pytest.mark.parametrize("encoder", ENCODER_NAMES)
def test_saved_models_predict_as_at_the_end_of_training(encoder, workdir):
    """For every sharing method: the model read back from its folder scores dev and test exactly
    as the trained model did at its selected epoch (same predictions), and predicts labels."""
    result = run_experiment(config_for(encoder, plain_methods()), log=lambda line: None)
    from textmtl.data.corpora.user_files import load_user_files

    for method in plain_methods():
        separately = SHARING.get(method).trains_tasks_separately
        for task in ("alpha", "beta"):
            model = textmtl.load(result.run_dir, method=method, seed=1, task=task if separately else None)
            metrics = json.loads((model.folder / "metrics.json").read_text())
            (loaded,) = load_user_files(workdir, path=f"{'a' if task == 'alpha' else 'b'}.csv", name=task,
                                        dev_fraction=0.25, test_fraction=0.25)
            for split in ("dev", "test"):
                part = loaded.split(split)
                scored = model.evaluate(task, part.texts, [loaded.labels[y] for y in part.labels])
                assert scored["accuracy"] == metrics[split][task]["accuracy"], (method, task, split)
                assert scored["macro_f1"] == metrics[split][task]["macro_f1"]
            predictions = model.predict(task, part.texts[:3])
            assert len(predictions) == 3
            for p in predictions:
                assert p.label in loaded.labels
                assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_resume_repeats_no_finished_run_and_gives_the_same_table(workdir, monkeypatch):
    config = config_for("mlp", ["single_task", "hard"], seeds=(1, 2))
    uninterrupted = run_experiment(config, log=lambda line: None)
    calls = []
    real = experiment.train_one

    def dies_on_the_second_hard_seed(config, method, data, seed, *rest):
        if method.name == "hard" and seed == 2:
            raise KeyboardInterrupt
        calls.append((method.name, seed))
        return real(config, method, data, seed, *rest)

    monkeypatch.setattr(experiment, "train_one", dies_on_the_second_hard_seed)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, log=lambda line: None)
    (partial,) = workdir.glob("runs/*.partial")
    assert (partial / "hard" / "seed-1" / "metrics.json").is_file()
    assert not (partial / "hard" / "seed-2").exists()
    with pytest.raises(ConfigError, match="choose one with --method/--seed"):
        textmtl.load(partial)  # several finished models: a choice is needed
    with pytest.raises(ConfigError, match="run folder not found"):
        textmtl.load(partial / "hard" / "seed-2")
    (partial / "hard" / "seed-1" / "checkpoint.pt").unlink()
    with pytest.raises(ConfigError, match=r"incomplete model folder \(missing checkpoint.pt\)"):
        textmtl.load(partial / "hard" / "seed-1")
    (partial / "hard" / "seed-1" / "metrics.json").unlink()  # now unfinished: trained again
    monkeypatch.setattr(experiment, "train_one", lambda *a: calls.append(a[1].name) or real(*a))
    calls.clear()
    resumed = run_experiment(config, log=lambda line: None, resume=partial)
    assert calls == ["hard", "hard"], "resuming repeated a finished run"
    assert resumed.table.rows == uninterrupted.table.rows
    assert not resumed.run_dir.name.endswith(".partial") and not partial.exists()


def test_units_trained_side_by_side_give_the_same_table_and_resume(workdir):
    # two one-thread worker processes (spawned: they re-import textmtl) train the units
    config = config_for("mlp", ["single_task", "hard"], seeds=(1, 2))
    one = run_experiment(config, log=lambda line: None)
    lines = []
    two = run_experiment(config, log=lines.append, workers=2)
    assert two.table.rows == one.table.rows
    assert any("on 2 worker processes" in line for line in lines)
    assert sum(line.startswith("  finished ") for line in lines) == 6  # 2 tasks x 2 seeds + 2 seeds
    # two units missing: only they are trained again, in the workers
    (two.run_dir / "hard" / "seed-2" / "metrics.json").unlink()
    (two.run_dir / "single_task" / "seed-1" / "alpha" / "metrics.json").unlink()
    lines.clear()
    again = run_experiment(config, log=lines.append, resume=two.run_dir, workers=2)
    assert again.table.rows == one.table.rows
    assert sorted(line.split(" (")[0] for line in lines if line.startswith("  finished ")) == [
        "  finished hard seed 2", "  finished single_task alpha seed 1"]
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        run_experiment(config, log=lambda line: None, workers=0)


def test_resume_refuses_another_config(workdir):
    done = run_experiment(config_for("mlp", ["hard"]), log=lambda line: None)
    other = config_for("mlp", ["hard"], epochs=3)
    with pytest.raises(ConfigError, match=r"differs .*training\.max_epochs"):
        run_experiment(other, log=lambda line: None, resume=done.run_dir)


def test_runs_started_in_the_same_second_get_their_own_folders(workdir):
    config = config_for("mlp", ["hard"], epochs=1)
    folders = {run_experiment(config, log=lambda line: None).run_dir for _ in range(3)}
    assert len(folders) == 3


def test_predict_and_evaluate_commands(workdir, capsys):
    result = run_experiment(config_for("mlp", ["hard"]), log=lambda line: None)
    (workdir / "new.txt").write_text("w1 great w2 .\nw3 awful .\n", encoding="utf-8")
    assert main(["predict", str(result.run_dir), "--task", "alpha", "new.txt", "--output", "out.jsonl"]) == 0
    lines = [json.loads(l) for l in (workdir / "out.jsonl").read_text().splitlines()]
    assert [l["text"] for l in lines] == ["w1 great w2 .", "w3 awful ."]
    assert all(set(l["probabilities"]) == {"neg", "pos"} for l in lines)
    capsys.readouterr()
    assert main(["evaluate", str(result.run_dir), "--task", "alpha", "a.csv"]) == 0
    assert "accuracy:" in capsys.readouterr().out
    # bad input: one line, exit 2
    (workdir / "empty.txt").write_text("", encoding="utf-8")
    (workdir / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    for argv, message in [
        (["predict", str(result.run_dir), "--task", "gamma", "new.txt"], "unknown task 'gamma'; this model predicts alpha, beta"),
        (["predict", str(result.run_dir), "--task", "alpha", "empty.txt"], "empty.txt: no input rows"),
        (["predict", str(result.run_dir), "--task", "alpha", "bad.txt"], "bad.txt"),
        (["predict", str(workdir / "nowhere"), "--task", "alpha", "new.txt"], "run folder not found"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("textmtl: error:") and message in err and len(err.splitlines()) == 1
    model_json = result.run_dir / "hard" / "seed-1" / "model.json"
    info = json.loads(model_json.read_text())
    model_json.write_text(json.dumps({**info, "format": 99}))
    assert main(["predict", str(result.run_dir), "--task", "alpha", "new.txt"]) == 2
    assert "model format 99" in capsys.readouterr().err


@pytest.mark.parametrize("train_tasks", ["oriented", "together"])
def test_models_whose_rows_interact_predict_beside_the_runs_training_texts(workdir, train_tasks):
    """Zhang et al.'s model scores a text inside collections of every task: the saved model
    draws the companions from the run's training rows (read again through its config.yaml) by
    the rule evaluation used, so it scores the test split exactly as metrics.json says."""
    from textmtl.data.corpora.user_files import load_user_files

    method = {"name": "generalized_recurrent", "embedding_dim": 8, "hidden_dim": 4, "coupling": True,
              "global_fusion": True, "train_tasks": train_tasks,
              "sampler": {"name": "task_oriented", "upsampling_coefficient": 1}}
    result = run_experiment(config_for("bilstm", [method], epochs=2), log=lambda line: None)
    for task, file in (("alpha", "a.csv"), ("beta", "b.csv")):
        folder = result.run_dir / "generalized_recurrent" / "seed-1"
        model = textmtl.load(folder / task if train_tasks == "oriented" else folder)
        metrics = json.loads((model.folder / "metrics.json").read_text())
        (loaded,) = load_user_files(workdir, path=file, name=task, dev_fraction=0.25, test_fraction=0.25)
        for split in ("dev", "test"):
            part = loaded.split(split)
            scored = model.evaluate(task, part.texts, [loaded.labels[y] for y in part.labels])
            assert scored["accuracy"] == metrics[split][task]["accuracy"], (task, split)
            # the same companions, not merely the same argmax: the probabilities give the loss
            predicted = model.predict(task, part.texts)
            loss = -np.mean([np.log(p.probabilities[loaded.labels[y]]) for p, y in zip(predicted, part.labels)])
            assert loss == pytest.approx(metrics[split][task]["loss"], rel=1e-5), (task, split)
        # a text's prediction depends on its position in the input, never on the others there
        first = model.predict(task, part.texts[:3])
        again = model.predict(task, part.texts[:2])
        for a, b in zip(again, first):
            assert a.probabilities == pytest.approx(b.probabilities)
        assert sum(first[0].probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    (result.run_dir / "config.yaml").unlink()
    orphan = textmtl.load(folder / "alpha" if train_tasks == "oriented" else folder)
    with pytest.raises(ConfigError, match="expected the run's config.yaml in a folder above the model"):
        orphan.predict("alpha", ["great w1 ."])
