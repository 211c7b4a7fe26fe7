"""``textmtl advise --measure`` / ``--tasks``: measured gains, their intervals, dev-based selection,
shared runs, the grouping rule, the heatmap and the CLI (tiny synthetic tasks, no network)."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from textmtl.cli import main
from textmtl.data.tasks import Split, Task
from textmtl.meta import advisor
from textmtl.meta.advisor import resolve_task
from textmtl.meta.engine import SparseMLPEngine, TaskArrays, TrainSettings
from textmtl.meta.grouping import best_auxiliary, heatmap, mutual_groups, partition
from textmtl.meta.measure import (Direction, MeasureProtocol, Unit, featurize, measure, plan_units, select_epoch,
                                  selected, t_interval)
from textmtl.sweep import LocalExecutor

# ---------------------------------------------------------------- the gain and its interval


def test_t_interval_by_hand():
    # differences 1, 2, 3: mean 2, sample std 1, t(0.975, 2 df) = 4.302653 -> 2 -/+ 4.302653 / sqrt(3)
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert low == pytest.approx(2.0 - 2.484138, abs=1e-6) and high == pytest.approx(2.0 + 2.484138, abs=1e-6)
    # 5 seeds: t(0.975, 4) = 2.776445; differences 0, 0, 0, 0, 1: mean 0.2, std sqrt(0.2)
    mean, low, high = t_interval([0, 0, 0, 0, 1])
    assert high - mean == pytest.approx(2.776445 * math.sqrt(0.2) / math.sqrt(5), abs=1e-6)
    assert t_interval([0.5, 0.5]) == (0.5, 0.5, 0.5)  # no spread: the point
    mean, low, high = t_interval([0.25])
    assert mean == 0.25 and math.isnan(low) and math.isnan(high)  # one seed: no interval


def test_the_gain_is_the_paired_difference_per_seed():
    d = Direction("a", "b", single=[0.80, 0.82, 0.84], joint=[0.81, 0.84, 0.87], single_epochs=[1, 2, 3],
                  joint_epochs=[2, 2, 2])
    assert d.gains == pytest.approx([0.01, 0.02, 0.03])
    assert d.mean == pytest.approx(0.02)
    assert d.low == pytest.approx(0.02 - 0.02484138, abs=1e-7) and d.high == pytest.approx(0.02 + 0.02484138, abs=1e-7)
    assert "no clear effect" in d.verdict()
    assert "helps" in Direction("a", "b", [0.5, 0.6], [0.7, 0.8], [1, 1], [1, 1]).verdict()
    assert "hurts" in Direction("a", "b", [0.7, 0.8], [0.5, 0.61], [1, 1], [1, 1]).verdict()


# ---------------------------------------------------------------- dev-based selection


class Watched(Mapping):
    """A dict that records which keys were read."""

    def __init__(self, data: dict) -> None:
        self.data, self.read = data, []

    def __getitem__(self, key):
        self.read.append(key)
        return self.data[key]

    def __iter__(self):
        raise AssertionError("the test scores were scanned")

    def __len__(self) -> int:
        return len(self.data)


def test_the_epoch_is_chosen_on_dev_and_test_is_read_at_that_epoch_only():
    assert select_epoch({1: 0.5, 2: 0.7, 3: 0.7, 4: 0.6}) == 2  # the first of equals
    test = Watched({1: 0.90, 2: 0.60, 3: 0.95})  # test peaks elsewhere: must not matter
    run = {"dev": {"a": {1: 0.5, 2: 0.7, 3: 0.6}}, "test": {"a": test}}
    assert selected(run, "a") == (2, 0.7, 0.6)
    assert test.read == [2]


def task_arrays(name: str, rng: np.random.Generator, n: int = 64, n_features: int = 200, classes: int = 2,
                flip_test: bool = False) -> TaskArrays:
    rule = rng.normal(size=(n_features, classes))

    def rows(count: int) -> sp.csr_matrix:
        m = sp.random(count, n_features, density=0.1, random_state=rng, format="csr", dtype=np.float32)
        return sp.csr_matrix(m.multiply(1 / np.sqrt(m.multiply(m).sum(1) + 1e-12)))

    x, xd, xt = rows(n), rows(n // 2), rows(n // 2)
    label = lambda m: np.asarray(m @ rule).argmax(1)  # noqa: E731
    test_y = label(xt)
    if flip_test:
        test_y = (classes - 1) - test_y
    return TaskArrays(name, x, label(x), xt, test_y, classes, dev_x=xd, dev_y=label(xd))


def test_selection_never_depends_on_the_test_labels():
    protocol = MeasureProtocol(epochs=6, hidden=(16,))

    def run(flip: bool):
        rng = np.random.default_rng(4)
        arrays = {n: task_arrays(n, rng, classes=c, flip_test=flip) for n, c in (("a", 2), ("b", 3))}
        return measure(arrays, protocol, 2, LocalExecutor(0))

    real, flipped = run(False), run(True)
    for key, d in real.directions.items():
        other = flipped.directions[key]
        assert d.single_epochs == other.single_epochs and d.joint_epochs == other.joint_epochs
    # the test scores did change: they are read, just never used to choose
    assert any(d.single != flipped.directions[k].single for k, d in real.directions.items())


def test_dev_scores_leave_the_training_and_test_scores_unchanged():
    rng = np.random.default_rng(1)
    with_dev = [task_arrays("a", rng), task_arrays("b", rng)]
    without = [TaskArrays(t.name, t.train_x, t.train_y, t.test_x, t.test_y) for t in with_dev]
    settings = TrainSettings(hidden=(16,), epochs=4, eval_every=1)
    a = SparseMLPEngine().train(with_dev, settings, seed=2)
    b = SparseMLPEngine().train(without, settings, seed=2)
    assert a.train_loss == b.train_loss and a.test_f1 == b.test_f1
    assert set(a.dev_f1) == {"a", "b"} and sorted(a.dev_f1["a"]) == [1, 2, 3, 4] and b.dev_f1 == {}
    with pytest.raises(ValueError, match="both or neither"):
        TaskArrays("x", without[0].train_x, without[0].train_y, without[0].test_x, without[0].test_y,
                   dev_x=without[0].test_x)


# ---------------------------------------------------------------- one joint run serves both directions


class CountingExecutor:
    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.results: dict[Unit, dict] = {}

    def describe(self) -> str:
        return "counting"

    def map(self, fn, payloads, shared):
        for unit in payloads:
            self.units.append(unit)
            self.results[unit] = fn(unit, shared)
            yield unit, self.results[unit]


def test_one_joint_run_serves_both_directions_and_single_runs_are_shared():
    rng = np.random.default_rng(0)
    arrays = {n: task_arrays(n, rng) for n in ("a", "b", "c")}
    executor = CountingExecutor()
    result = measure(arrays, MeasureProtocol(epochs=3, hidden=(8,)), 2, executor)
    # 3 tasks, 2 seeds: 3 single + 3 joint runs per seed (not 6 + 6), each trained once
    assert len(executor.units) == len(set(executor.units)) == 12
    assert result.runs == {"single": 6, "joint": 6}
    assert len(result.directions) == 6
    for seed in range(2):
        run = executor.results[Unit(("a", "b"), seed)]
        assert result.directions[("a", "b")].joint[seed] == selected(run, "a")[2]
        assert result.directions[("b", "a")].joint[seed] == selected(run, "b")[2]
        assert result.directions[("a", "c")].single[seed] == result.directions[("a", "b")].single[seed]
    # a pair: one single-task run of the main task and one joint run per seed
    assert plan_units(["m", "x"], 5, [("m", "x")]) == ([Unit(("m", "x"), s) for s in range(5)] +
                                                       [Unit(("m",), s) for s in range(5)])
    assert len(plan_units([str(i) for i in range(16)], 1)) == 16 + 120


# ---------------------------------------------------------------- groupings


NAMES = ["a", "b", "c", "d"]
GAIN = np.array([[np.nan, 1, 2, -1],
                 [1, np.nan, 1, 1],
                 [3, 2, np.nan, -2],
                 [1, 1, 1, np.nan]], dtype=float)


def test_groups_are_maximal_sets_where_every_ordered_pair_gains():
    # mutual gains: a-b, a-c, b-c, b-d (a-d and c-d gain one way only)
    assert mutual_groups(NAMES, GAIN) == [("a", "b", "c"), ("b", "d")]
    assert partition(NAMES, GAIN, mutual_groups(NAMES, GAIN)) == [("a", "b", "c"), ("d",)]
    # rule "ci": the lower ends must be > 0 both ways: only a-c (0.5 / 1.5)
    assert mutual_groups(NAMES, GAIN, GAIN - 1.5, rule="ci") == [("a", "c")]
    assert best_auxiliary(NAMES, GAIN) == [("a", "c", 2.0), ("b", "a", 1.0), ("c", "a", 3.0), ("d", "a", 1.0)]
    losing = -np.abs(np.nan_to_num(GAIN, nan=1.0))
    assert mutual_groups(NAMES, losing) == []
    assert partition(NAMES, losing, []) == [("a",), ("b",), ("c",), ("d",)]
    assert [aux for _, aux, _ in best_auxiliary(NAMES, losing)] == [None] * 4


def test_a_gain_that_is_zero_up_to_rounding_is_not_positive():
    # e.g. the mean of 0, 0.01, -0.0175, -0.0025, 0.01 in floating point: 2.2e-17
    gain = np.array([[np.nan, np.mean([0.0, 0.01, -0.0175, -0.0025, 0.01])], [0.01, np.nan]])
    assert gain[0, 1] != 0
    assert mutual_groups(["a", "b"], gain) == []
    assert best_auxiliary(["a", "b"], gain)[0][1] is None


def test_ties_between_groups_of_one_size_go_to_the_higher_inner_gain():
    gain = np.array([[np.nan, 1, -1, -1], [1, np.nan, -1, -1], [-1, -1, np.nan, 5], [-1, -1, 5, np.nan]])
    assert mutual_groups(NAMES, gain) == [("c", "d"), ("a", "b")]
    assert partition(NAMES, gain, mutual_groups(NAMES, gain)) == [("c", "d"), ("a", "b")]


def test_the_heatmap_is_written(tmp_path):
    path = heatmap(tmp_path / "gain.png", ["x:a", "x:b", "x:c", "x:d"], GAIN / 100, "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# ---------------------------------------------------------------- tasks and the CLI, on tiny user files

WORDS = {
    "sent": {"pos": ["great", "love", "excellent", "fine"], "neg": ["bad", "awful", "poor", "hate"]},
    "sent2": {"pos": ["great", "superb", "nice", "fine"], "neg": ["bad", "terrible", "poor", "boring"]},
    "topic": {"x": ["alpha", "beta"], "y": ["gamma", "delta"], "z": ["epsilon", "zeta"]},
}


def write_file(folder: Path, name: str, n: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = WORDS[name]
    path = folder / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = list(words)[i % len(words)]
            writer.writerow([" ".join(rng.choices(words[label], k=5) + rng.choices(["the", "it", "was"], k=5)), label])
    return path


def test_a_file_task_is_a_task_with_a_seeded_dev_split(tmp_path):
    path = write_file(tmp_path, "topic", n=60)
    task = resolve_task(f"file:{path}", binary=False)
    assert isinstance(task, Task) and task.labels == ("x", "y", "z") and task.name == "topic"
    assert len(task.train) + len(task.dev) == len(task.meta["advisor_train"]) == 48 and len(task.test) == 12
    assert len(task.dev) == round(48 * advisor.DEV_FRACTION) and set(task.dev.labels) == {0, 1, 2}
    again = resolve_task(f"file:{path}", binary=False)
    assert again.dev.texts == task.dev.texts  # seeded
    assert resolve_task(f"file:{path}:z,x", binary=False).labels == ("z", "x")
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="the advisor compares binary tasks: name two"):
        resolve_task(f"file:{path}")  # the meta-model path stays binary


def test_a_dataset_task_loads_only_its_domain(monkeypatch):
    seen = []

    def fake_load(name, params, data_dir):
        seen.append((name, params))
        split = Split(["good film", "bad film"], [1, 0])
        return [Task("books", ("negative", "positive"), split, split, split)]

    monkeypatch.setattr("textmtl.data.datasets.load_tasks", fake_load)
    task = resolve_task("fdu_mtl:books", binary=False)
    assert seen == [("fdu_mtl", {"unlabeled": False, "domains": ["books"]})]
    assert task.name == "fdu_mtl:books" and task.meta["origin"] == "fdu_mtl:books"
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="has no task 'nosuch'; its tasks: apparel, baby"):
        resolve_task("fdu_mtl:nosuch")
    assert len(seen) == 1  # refused before any loading


def test_measure_a_pair_end_to_end(tmp_path, capsys):
    a, b = write_file(tmp_path, "sent"), write_file(tmp_path, "sent2", seed=1)
    code = main(["advise", "--main", f"file:{a}", "--aux", f"file:{b}", "--measure", "--seeds", "2", "--epochs", "3",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "pair")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out
    assert "main task sent (2 classes) with auxiliary task sent2, 2 seed(s)" in out
    assert "chosen epochs" in out and "95% CI [" in out and "Student t" in out and "took " in out
    saved = json.loads((tmp_path / "pair" / "measure.json").read_text())
    assert saved["runs"] == {"single": 2, "joint": 2}
    (direction,) = saved["directions"]
    assert direction["main"] == "sent" and len(direction["gains"]) == 2


def test_measure_the_matrix_end_to_end_with_a_three_class_task(tmp_path, capsys):
    files = [write_file(tmp_path, n, seed=i) for i, n in enumerate(("sent", "sent2", "topic"))]
    out_dir = tmp_path / "matrix"
    code = main(["advise", "--tasks", *[f"file:{f}" for f in files], "--seeds", "2", "--epochs", "2",
                 "--workers", "0", "--no-progress", "--out", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "best auxiliary per task" in captured.out and "recommended grouping" in captured.out
    for name in ("gain_matrix.png", "gain_matrix.json", "gain_matrix.csv"):
        assert (out_dir / name).stat().st_size > 0
    saved = json.loads((out_dir / "gain_matrix.json").read_text())
    assert saved["runs"] == {"single": 6, "joint": 6} and len(saved["directions"]) == 6
    assert saved["tasks"] == ["sent", "sent2", "topic"]
    rows = list(csv.DictReader((out_dir / "gain_matrix.csv").open()))
    assert len(rows) == 6 and {r["main"] for r in rows} == set(saved["tasks"])


@pytest.mark.parametrize("argv, fragments", [
    (["--tasks", "file:A"], ["--tasks: expected at least two tasks, found 1"]),
    (["--tasks", "file:A", "file:A"], ["is given twice; expected every task once"]),
    (["--tasks", "file:A", "file:B", "--main", "file:A"], ["expected either --tasks or --main/--aux"]),
    (["--main", "file:A"], ["--aux missing"]),
    (["--main", "file:A", "--aux", "file:B", "--epochs", "3"], ["--epochs is an option of --measure"]),
    (["--main", "file:A", "--aux", "file:B", "--measure", "--seeds", "0"], ["'seeds' must be >= 1, got 0"]),
    (["--main", "file:A", "--aux", "file:B", "--measure", "--epochs", "0"], ["'epochs' must be >= 1, got 0"]),
], ids=["one-task", "twice", "both-forms", "no-aux", "epochs-without-measure", "zero-seeds", "zero-epochs"])
def test_bad_measure_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragments):
    paths = {"file:A": f"file:{write_file(tmp_path, 'sent')}", "file:B": f"file:{write_file(tmp_path, 'sent2')}"}
    argv = [paths.get(a, a) for a in argv]
    if "--measure" in argv or "--tasks" in argv:
        argv += ["--workers", "0", "--no-progress", "--out", str(tmp_path / "o")]
    code = main(["advise", *argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("textmtl: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_measure_the_main_task_with_itself_warns_and_runs(tmp_path, capsys):
    path = write_file(tmp_path, "sent")
    code = main(["advise", "--main", f"file:{path}", "--aux", f"file:{path}", "--measure", "--seeds", "2",
                 "--epochs", "2", "--workers", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err.startswith("textmtl: warning: the main task and the auxiliary task are the same (sent)")
    assert "with auxiliary task sent (auxiliary)" in captured.out
