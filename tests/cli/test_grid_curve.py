"""scripts/grid_curve.py: every member of a grid group, per task, from a run's records.json."""

from __future__ import annotations

import json

import pytest

from core.helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("grid_curve")


def record(method, seed, task, accuracy):
    return {"method": method, "seed": seed, "task": task,
            "test": {"accuracy": accuracy}, "dev": {"accuracy": accuracy}}


@pytest.fixture
def run_dir(tmp_path):
    records = [record("full", s, t, 0.5) for s in (1, 2) for t in ("books", "dvd")]  # the chosen copy
    for n0, base in ((1, 0.70), (2, 0.80), (10, 0.60)):
        for seed, shift in ((1, 0.0), (2, 0.02)):
            records += [record(f"full@upsampling_coefficient={n0}", seed, "books", base + shift),
                        record(f"full@upsampling_coefficient={n0}", seed, "dvd", base - 0.1 + shift)]
    records.append(record("other@weight=1", 1, "books", 0.1))
    (tmp_path / "records.json").write_text(json.dumps(records))
    return tmp_path


def test_every_point_per_task_in_grid_order(script, run_dir, capsys):
    assert script.main([str(run_dir), "full"]) == 0
    text = (run_dir / "full-curve.md").read_text()
    lines = text.splitlines()
    assert lines[2] == ("| task | upsampling_coefficient=1 | upsampling_coefficient=2 | "
                        "upsampling_coefficient=10 |")  # the grid's order, not sorted as text
    assert lines[4] == "| books | 71.00 ± 1.41 | 81.00 ± 1.41 | 61.00 ± 1.41 |"
    assert lines[5] == "| dvd | 61.00 ± 1.41 | 71.00 ± 1.41 | 51.00 ± 1.41 |"
    assert lines[6] == "| average | 66.00 ± 1.41 | 76.00 ± 1.41 | 56.00 ± 1.41 |"
    assert (run_dir / "full-curve.png").stat().st_size > 0
    assert script.point_values(script.members(json.loads((run_dir / "records.json").read_text()), "full"),
                               "full") == [1.0, 2.0, 10.0]
    assert script.point_values(["g@a=1,b=2"], "g") is None


def test_bad_input_is_one_line_and_exit_2(script, run_dir, tmp_path, capsys):
    assert script.main([str(run_dir), "nope"]) == 2
    assert "no grid group 'nope' in the run; its grid groups: full, other" in capsys.readouterr().err
    assert script.main([str(run_dir), "full", "--metric", "span_f1"]) == 2
    assert "has no test metric 'span_f1'" in capsys.readouterr().err
    assert script.main([str(tmp_path / "missing"), "full"]) == 2
    assert "records.json: not found" in capsys.readouterr().err
