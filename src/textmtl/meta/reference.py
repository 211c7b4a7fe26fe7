"""The straightforward per-model PyTorch loop the fast engine is checked against.

``torch.nn`` layers, autograd, ``torch.optim.Adam`` (fused where this PyTorch build offers it on
the device) and a densified batch -- what a user would write first. It starts from the same
weights (:func:`~textmtl.meta.engine.init_parameters`) and sees the same batches
(:func:`~textmtl.meta.engine.batch_plan`) as :class:`~textmtl.meta.engine.SparseMLPEngine`, so
the two can be compared loss by loss (tests/meta/test_engine.py) and timed side by side
(benchmarks/meta_engine.py).
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import RunResult, TaskArrays, TrainSettings, _eval_epochs, batch_plan, evaluate, init_parameters


class ReferenceEngine:
    """Per-model PyTorch training: nn.Linear + ReLU, autograd, torch.optim.Adam.

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
        init = init_parameters(n_features, settings.hidden, [t.num_classes for t in tasks], seed)
        sizes = (n_features, *settings.hidden)
        hidden = torch.nn.ModuleList(torch.nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(settings.hidden)))
        heads = torch.nn.ModuleList(torch.nn.Linear(sizes[-1], t.num_classes) for t in tasks)
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
        plan = batch_plan([t.train_x.shape[0] for t in tasks], settings.batch_size, settings.epochs, seed)
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
                total = 0.0
                losses = []
                for k, rows in enumerate(task_rows):
                    x = torch.from_numpy(tasks[k].train_x[rows].toarray()).float().to(device)
                    h = x
                    for layer in hidden:
                        h = torch.relu(layer(h))
                    loss = torch.nn.functional.cross_entropy(heads[k](h), labels[k][rows].to(device))
                    losses.append(loss)
                    sums[k] += float(loss.detach()) * len(rows)
                    counts[k] += len(rows)
                total = sum(losses)
                total.backward()
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
                                                             settings.f1_average)
        result.steps = step
        return result
