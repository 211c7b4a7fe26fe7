"""What mixing methods learned is saved with the model and shown by ``textmtl mixing RUN_DIR``."""

from __future__ import annotations

import json

from textmtl.cli import main
from textmtl.experiment import run_experiment

from cli.test_models import config_for, workdir  # noqa: F401  (fixture)

METHODS = ["hard", {"name": "cross_stitch", "shared_embedding": True},
           {"name": "sluice", "head_hidden": 4}]


def test_mixing_is_saved_and_printed_for_every_mixing_model(workdir, capsys):  # noqa: F811
    result = run_experiment(config_for("bilstm", METHODS), log=lambda line: None)
    run = result.run_dir
    assert not (run / "hard" / "seed-1" / "mixing.json").exists()  # hard sharing learns no mixing
    for method in ("cross_stitch", "sluice"):
        folder = run / method / "seed-1"
        assert (folder / "mixing.png").read_bytes()[:4] == b"\x89PNG"
        mixing = json.loads((folder / "mixing.json").read_text())
        assert mixing["method"] == method and mixing["alpha"]
    sluice = json.loads((run / "sluice" / "seed-1" / "mixing.json").read_text())
    assert sluice["alpha"][0]["labels"] == ["alpha:1", "alpha:2", "beta:1", "beta:2"]
    assert set(sluice["beta"]) == {"alpha", "beta"}

    assert main(["mixing", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "== cross_stitch/seed-1" in printed and "== sluice/seed-1" in printed
    assert "alpha after bilstm_1" in printed and "beta (each task's weights" in printed
    assert "== hard" not in printed

    # a folder written before mixing.json existed: the model is loaded and asked
    saved = (run / "sluice" / "seed-1" / "mixing.json").read_text()
    (run / "sluice" / "seed-1" / "mixing.json").unlink()
    assert main(["mixing", str(run / "sluice" / "seed-1")]) == 0
    assert "alpha after bilstm_1" in capsys.readouterr().out
    assert main(["mixing", "--write", str(run / "sluice" / "seed-1")]) == 0
    assert json.loads((run / "sluice" / "seed-1" / "mixing.json").read_text()) == json.loads(saved)

    assert main(["mixing", str(run / "hard")]) == 2  # a one-line error
    assert "no model folder of a mixing method" in capsys.readouterr().err
