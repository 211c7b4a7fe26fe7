"""``grid:`` in a method entry: one run per grid point, the table's column shows the point of
best mean dev score (never test), ``grid.md`` lists every point."""

from __future__ import annotations

import json

import pytest

from textmtl.config import expand_grids, parse_config
from textmtl.errors import ConfigError
from textmtl.experiment import run_experiment
from textmtl.results import Record, select_grid_members

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)

SOFT_GRID = {"name": "soft", "label": "l2", "regularizers": [{"name": "l2_to_mean", "weight": 0.1}],
             "grid": {"regularizers.0.weight": [0.0, 1.0]}}


def test_grid_entries_expand_into_labelled_members():
    (a, b) = expand_grids([SOFT_GRID])
    assert a["label"] == "l2@weight=0" and b["label"] == "l2@weight=1"
    assert a["regularizers"][0]["weight"] == 0.0 and b["grid_group"] == "l2" and "grid" not in a
    assert SOFT_GRID["regularizers"][0]["weight"] == 0.1  # the config entry is not changed
    two = expand_grids([{"name": "cross_stitch", "grid": {"self_weight": [0.8, 0.9], "head_hidden": [0, 4]}}])
    assert [m["label"] for m in two] == ["cross_stitch@self_weight=0.8,head_hidden=0",
                                         "cross_stitch@self_weight=0.8,head_hidden=4",
                                         "cross_stitch@self_weight=0.9,head_hidden=0",
                                         "cross_stitch@self_weight=0.9,head_hidden=4"]
    for grid, message in [({"regularizers.3.weight": [1]}, "the entry has no 'regularizers.3'"),
                          ({"sampler.temperature": [1]}, "the entry has no 'sampler'"),
                          ({"self_weight": []}, "non-empty lists of values")]:
        with pytest.raises(ConfigError, match=message):
            expand_grids([{"name": "soft", "regularizers": [{"name": "l2_to_mean"}], "grid": grid}])


def test_the_choice_reads_dev_only_and_ties_go_to_the_first_point():
    def records(method, dev, test):
        return [Record(method, seed, task, {"accuracy": test}, {"accuracy": dev})
                for seed in (1, 2) for task in ("a", "b")]

    rows = records("g@w=1", 0.6, 0.99) + records("g@w=2", 0.7, 0.5) + records("g@w=3", 0.7, 0.1)
    chosen, table = select_grid_members(rows, {"g": ["g@w=1", "g@w=2", "g@w=3"]})
    assert {r.method for r in chosen} == {"g"} and {r.test["accuracy"] for r in chosen} == {0.5}
    assert [row[-1] for row in table.rows] == ["", "chosen", ""]


def test_a_grid_run_tables_the_dev_chosen_point(workdir):  # noqa: F811
    config = config_for("mlp", ["single_task", SOFT_GRID], epochs=1)
    assert [m.title for m in config.methods] == ["single_task", "l2@weight=0", "l2@weight=1"]
    result = run_experiment(config, log=lambda line: None)
    run = result.run_dir
    assert (run / "l2@weight=0" / "seed-1" / "metrics.json").is_file()
    grid = (run / "grid.md").read_text()
    assert "l2@weight=0" in grid and "l2@weight=1" in grid and grid.count("chosen") == 1
    header = (run / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["task", "single_task", "l2"] and "l2@weight=0" not in header
    records = json.loads((run / "records.json").read_text())
    chosen_line = next(line for line in grid.splitlines() if "chosen" in line)
    member = chosen_line.split("|")[2].strip()
    member_tests = sorted(r["test"]["accuracy"] for r in records if r["method"] == member)
    assert sorted(r["test"]["accuracy"] for r in records if r["method"] == "l2") == member_tests
    # the resolved config (what --resume compares) parses back to the same members
    again = parse_config(json.loads(json.dumps(config.to_dict())))
    assert [m.title for m in again.methods] == [m.title for m in config.methods]
    assert [m.grid_group for m in again.methods] == [None, "l2", "l2"]


def test_a_group_title_may_not_repeat_a_method_title():
    with pytest.raises(ConfigError, match="two entries named 'soft'"):
        parse_config({"name": "x", "data": {"trec": {}}, "encoder": "mlp",
                      "methods": ["soft", {"name": "soft", "grid": {"head_hidden": [0, 4]}}]})
