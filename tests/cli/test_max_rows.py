"""``max_rows``: a quick check of a whole config on a seeded, class-balanced sample of every
split; the table says it is not a result."""

from __future__ import annotations

import json

import pytest

from textmtl.config import parse_config
from textmtl.errors import ConfigError
from textmtl.experiment import run_experiment

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)


def test_max_rows_limits_every_split_to_a_class_balanced_sample_and_says_so(workdir):  # noqa: F811
    from textmtl.data.tasks import Split, Task

    task = Task("t", ("a", "b"), Split([f"x{i}" for i in range(20)], [int(i < 3) for i in range(20)]),
                Split(["d0", "d1"], [0, 1]), Split(["e0", "e1", "e2"], [0, 1, 1]))
    small = task.limited({"train": 4, "test": 2})
    assert len(small.train) == 4 and sorted(small.train.labels) == [0, 0, 1, 1]  # both classes
    assert small.dev == task.dev and len(small.test) == 2 and small.meta["max_rows"] == {"train": 4, "test": 2}
    assert small.train.texts == task.limited({"train": 4, "test": 2}).train.texts  # seeded
    assert all(text in task.train.texts for text in small.train.texts)

    config = config_for("mlp", ["hard"], epochs=1)
    raw = config.to_dict()
    raw["max_rows"] = {"train": 10, "dev": 4}
    run = run_experiment(parse_config(raw), log=lambda line: None).run_dir
    metrics = json.loads((run / "hard" / "seed-1" / "metrics.json").read_text())
    assert "NOT A RESULT" in (run / "results.md").read_text()
    assert metrics["steps"] <= 2 * 2  # 10 rows per task, batch 8
    for bad in ({"train": 0}, {"valid": 3}, {}):
        raw["max_rows"] = bad
        with pytest.raises(ConfigError, match="'max_rows' must map splits"):
            parse_config(raw)
