"""The straightforward per-model PyTorch loop the fast engine is checked against.

``torch.nn`` layers, autograd, ``torch.optim.Adam`` (fused where this PyTorch build offers it on
the device) and a densified batch -- what a user would write first. It starts from the same
weights (:func:`~textmtl.meta.engine.init_parameters`), sees the same batches
(:func:`~textmtl.meta.engine.batch_plan`) and drops the same units
(:func:`~textmtl.meta.engine.dropout_masks`) as :class:`~textmtl.meta.engine.SparseMLPEngine`,
so the two can be compared loss by loss (tests/meta/test_engine.py) and timed side by side
(benchmarks/meta_engine.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .engine import (RunResult, TaskArrays, TrainSettings, _eval_epochs, batch_plan, dropout_generator,
                     dropout_masks, evaluate, init_parameters)


class ReferenceEngine:
    """Per-model PyTorch training: nn.Linear + ReLU or sigmoid (+ dropout), autograd, torch.optim.Adam.

    Args:
        device: torch device.
        fused: use Adam's fused kernel (PyTorch's fastest single-model update).
    """

    def __init__(self, *, device: str | torch.device = "cpu", fused: bool = True) -> None:
        self.device = torch.device(device)
        self.fused = fused

    def train(self, tasks: list[TaskArrays], settings: TrainSettings, seed: int,
              step_losses: list[float] | None = None) -> RunResult:
        """Train; if ``step_losses`` is given, append the total loss of every step to it."""
        device = self.device
        n_features = tasks[0].train_x.shape[1]
        outputs = [settings.outputs(t.num_classes) for t in tasks]
        init = init_parameters(n_features, settings.hidden, outputs, seed, settings.init)
        sizes = (n_features, *settings.hidden)
        hidden = torch.nn.ModuleList(torch.nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(settings.hidden)))
        heads = torch.nn.ModuleList(torch.nn.Linear(sizes[-1], n) for n in outputs)
        with torch.no_grad():
            for i, layer in enumerate(hidden):
                layer.weight.copy_(init[f"hidden.{i}.weight"])
                layer.bias.copy_(init[f"hidden.{i}.bias"])
            for k, layer in enumerate(heads):
                layer.weight.copy_(init[f"head.{k}.weight"])
                layer.bias.copy_(init[f"head.{k}.bias"])
        hidden.to(device)
        heads.to(device)
        parameters = list(hidden.parameters()) + list(heads.parameters())
        optimizer = torch.optim.Adam(parameters, lr=settings.lr, betas=settings.betas, eps=settings.eps,
                                     fused=self.fused)
        plan = batch_plan([t.train_x.shape[0] for t in tasks], settings.batch_size, settings.epochs, seed,
                          settings.batch_order)
        dropper = dropout_generator(seed) if settings.dropout else None
        activation = torch.relu if settings.activation == "relu" else torch.sigmoid
        clip = settings.clip_logit()
        labels = [torch.as_tensor(np.asarray(t.train_y), dtype=torch.int64) for t in tasks]
        eval_at = _eval_epochs(settings)
        result = RunResult(train_loss={t.name: [] for t in tasks}, test_f1={t.name: {} for t in tasks})
        step = 0
        for epoch, batches in enumerate(plan, start=1):
            sums = [0.0 for _ in tasks]
            counts = [0 for _ in tasks]
            for task_rows in batches:
                step += 1
                optimizer.zero_grad(set_to_none=True)
                masks = (dropout_masks(dropper, [len(r) for r in task_rows], settings.hidden, settings.dropout)
                         if dropper is not None else None)
                losses = []
                for k, rows in enumerate(task_rows):
                    x = torch.from_numpy(tasks[k].train_x[rows].toarray()).float().to(device)
                    h = x
                    for i, layer in enumerate(hidden):
                        h = activation(layer(h))
                        if masks is not None:
                            h = h * torch.from_numpy(masks[k][i]).to(device)
                    logits = heads[k](h)
                    target = labels[k][rows].to(device)
                    if settings.head == "sigmoid":
                        z = logits[:, 0]
                        # Keras clips the probability to [ε, 1-ε]: the same as clipping the logit
                        z = z.clamp(-clip, clip) if math.isfinite(clip) else z
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target.to(z.dtype))
                    else:
                        loss = torch.nn.functional.cross_entropy(logits, target)
                    losses.append(loss)
                    sums[k] += float(loss.detach()) * len(rows)
                    counts[k] += len(rows)
                total = sum(losses)
                total.backward()
                for group in optimizer.param_groups:  # Keras's Adam: PyTorch's with a per-step ε
                    group["eps"] = settings.adam_eps(step)
                optimizer.step()
                if step_losses is not None:
                    step_losses.append(float(total.detach()))
            for k, t in enumerate(tasks):
                result.train_loss[t.name].append(sums[k] / max(counts[k], 1))
            if epoch in eval_at:
                params = {f"hidden.{i}.{p}": getattr(layer, p).detach().cpu().numpy()
                          for i, layer in enumerate(hidden) for p in ("weight", "bias")}
                params.update({f"head.{k}.{p}": getattr(layer, p).detach().cpu().numpy()
                               for k, layer in enumerate(heads) for p in ("weight", "bias")})
                first = np.ascontiguousarray(params["hidden.0.weight"].T)
                for k, t in enumerate(tasks):
                    result.test_f1[t.name][epoch] = evaluate(first, params, k, t.test_x, t.test_y,
                                                             settings.f1_average, settings.activation)
        result.steps = step
        return result
