"""``training.precision``: the forward pass under autocast (bf16 on CPU and CUDA; fp16 with loss
scaling on CUDA), the true losses logged, float32 parameters and evaluation, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.samplers import SAMPLERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.precision import MixedPrecision
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import featurized
from .test_training_contract import factory, quick


def trained(synthetic_tasks, precision, device="cpu", weighting="fixed", spy=None):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    torch.manual_seed(0)
    model = SHARING.build("hard", specs, factory("mlp", data))
    if spy is not None:
        model.register_forward_hook(lambda module, inputs, output: spy.append(output.dtype))
    result = train(model, WEIGHTINGS.build(weighting, data.task_names), SAMPLERS.build("every_task"), data,
                   quick(max_epochs=4, lr=0.01, precision=precision, device=device), seed=1)
    return model, result


def test_bf16_runs_the_forward_in_bfloat16_and_keeps_float32_weights(synthetic_tasks):
    dtypes = []
    model, bf16 = trained(synthetic_tasks, "bf16", spy=dtypes)
    _, fp32 = trained(synthetic_tasks, "fp32")
    assert torch.bfloat16 in dtypes  # training steps ran under autocast
    assert dtypes[-1] == torch.float32  # the test evaluation after training: float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    losses = [np.mean(list(c["train_loss"].values())) for c in bf16.curves]
    assert losses[-1] < losses[0], "bf16 training did not learn"
    # the same model learns about the same: bfloat16 rounding, not another optimisation
    assert np.mean(list(bf16.curves[-1]["train_loss"].values())) == pytest.approx(
        np.mean(list(fp32.curves[-1]["train_loss"].values())), rel=0.1)


def test_fp16_needs_cuda_and_a_weighting_that_reads_no_task_gradients(synthetic_tasks):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device, got cpu; use bf16"):
        trained(synthetic_tasks, "fp16")
    gradnorm = WEIGHTINGS.build("gradnorm", ["a", "b"])
    with pytest.raises(ConfigError, match="weighting GradNorm reads per-task gradients; use bf16 or fp32"):
        MixedPrecision("fp16", torch.device("cuda"), gradnorm)
    with pytest.raises(ConfigError, match="'training.precision' must be one of fp32, bf16, fp16"):
        TrainingConfig(precision="fp8").validate()


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_reads_task_gradients_says_whether_backward_is_the_weightings_own(name):
    from textmtl.weighting.base import LossWeighting

    cls = WEIGHTINGS.get(name)
    assert cls.reads_task_gradients == (cls.backward is not LossWeighting.backward)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 loss scaling runs on CUDA only")
def test_fp16_on_cuda_scales_the_loss_and_logs_the_true_one(synthetic_tasks):
    model, fp16 = trained(synthetic_tasks, "fp16", device="cuda")
    _, fp32 = trained(synthetic_tasks, "fp32", device="cuda")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    first16 = np.mean(list(fp16.curves[0]["train_loss"].values()))
    first32 = np.mean(list(fp32.curves[0]["train_loss"].values()))
    assert first16 == pytest.approx(first32, rel=0.05)  # unscaled (a scale of 65536 would show)
    assert np.mean(list(fp16.curves[-1]["train_loss"].values())) < first16
