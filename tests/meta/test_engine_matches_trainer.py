"""The study's fast engine is a backend of the main trainer, not a second world.

From the same initial weights and the same batch plan, ``SparseMLPEngine`` (hand-written sparse
forward/backward, fused Adam) and ``textmtl.training.train`` (the MLP encoder, hard sharing,
the every-task sampler, fixed weights: what ``textmtl run`` trains) take the same 50 steps:
their per-step losses agree to 1e-4 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.data.tasks import Split, Task
from textmtl.encoders import ENCODERS
from textmtl.meta.engine import SparseMLPEngine, TaskArrays, TrainSettings, batch_plan, init_parameters
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

ROWS, BATCH, EPOCHS = 128, 32, 13  # 4 full steps per epoch (no short last batch): 52 steps
WORDS = [f"w{i}" for i in range(300)]


def _task(name: str, rng: np.random.Generator) -> Task:
    cues = rng.choice(len(WORDS), size=(2, 20), replace=False)

    def split(n: int) -> Split:
        labels = rng.integers(0, 2, n).tolist()
        texts = [" ".join([WORDS[w] for w in rng.choice(cues[y], 4)] +
                          [WORDS[w] for w in rng.integers(0, len(WORDS), 12)]) for y in labels]
        return Split(texts, labels)

    return Task(name, ("neg", "pos"), split(ROWS), split(40), split(40))


@pytest.fixture(scope="module")
def data() -> MultiTaskData:
    rng = np.random.default_rng(7)
    tasks = [_task("a", rng), _task("b", rng)]
    return MultiTaskData.build(tasks, FEATURIZERS.build("tfidf", params={"max_features": 200}))


def _arrays(data: MultiTaskData, k: int) -> TaskArrays:
    train_rows, test_rows = data.rows["train"][k], data.rows["test"][k]
    return TaskArrays(data.task_names[k], data.tables["train"].matrix[train_rows].tocsr(),
                      np.asarray(data.tasks[k].train.labels),
                      data.tables["test"].matrix[test_rows].tocsr(),
                      np.asarray(data.tasks[k].test.labels))


def _model_from_engine_init(data: MultiTaskData, seed: int):
    """The textmtl model, with the engine's initial weights copied in (names mapped)."""
    spec = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("hard", spec, lambda: ENCODERS.build("mlp", data.spec,
                                                              params={"hidden_dims": [100, 100]}))
    init = init_parameters(data.spec.size, (100, 100), [2, 2], seed)
    with torch.no_grad():
        model.encoder.input_weight.copy_(init["hidden.0.weight"].T)  # (V, H) bag table
        model.encoder.input_bias.copy_(init["hidden.0.bias"])
        model.encoder.hidden_layers[0].weight.copy_(init["hidden.1.weight"])
        model.encoder.hidden_layers[0].bias.copy_(init["hidden.1.bias"])
        for k in range(2):
            model.heads.heads[k].weight.copy_(init[f"head.{k}.weight"])
            model.heads.heads[k].bias.copy_(init[f"head.{k}.bias"])
    return model


def test_engine_and_trainer_take_the_same_50_steps(data):
    seed = 3
    settings = TrainSettings(hidden=(100, 100), batch_size=BATCH, epochs=EPOCHS, eval_every=0)
    engine_losses: list[float] = []
    SparseMLPEngine().train([_arrays(data, 0), _arrays(data, 1)], settings, seed,
                            step_losses=engine_losses)

    # the engine's batch plan as the trainer's row streams: each epoch's batches of a task,
    # concatenated, are that epoch's permutation of its rows
    plan = batch_plan([ROWS, ROWS], BATCH, EPOCHS, seed)
    permutations = [[np.concatenate([steps[s][k] for s in range(len(steps))]) for steps in plan]
                    for k in range(2)]
    served = [0, 0]

    def stream_order(k: int, rng) -> np.ndarray:
        served[k] += 1
        return permutations[k][served[k] - 1]

    model = _model_from_engine_init(data, seed)
    trainer_losses: list[float] = []
    original_hook = model.on_step_end

    def record(state) -> None:
        trainer_losses.append(sum(state.epoch_losses[name][-1] for name in data.task_names))
        original_hook(state)

    model.on_step_end = record
    config = TrainingConfig(optimizer="adam", lr=settings.lr, batch_size=BATCH, max_epochs=EPOCHS,
                            patience=0, clip_norm=None, progress=False, device="cpu")
    train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task", data.task_names),
          data, config, seed=seed, stream_order=stream_order)

    assert len(engine_losses) >= 50 and len(trainer_losses) >= 50
    np.testing.assert_allclose(np.array(trainer_losses[:50]), np.array(engine_losses[:50]), rtol=1e-4)
    assert engine_losses[49] < engine_losses[0]  # it learns: the comparison is not of constants
