"""Data-parallel training over processes: ``torchrun --nproc-per-node N -m textmtl run CONFIG``
(or ``textmtl run CONFIG --ddp N``, which starts torchrun).

Every process builds the same model from the same seed and plans the same steps (the sampler
and row streams are seeded alike); of every step's rows, process r takes rows r, r + N, ...
of each task's draw. The per-task losses of a process are its means, each scaled by its share
of what the task's mean runs over in the step (labelled rows; labelled tokens for tagging:
n_r / n, counted with one more all-reduce), and the regularisers' penalties by 1 / N, so the SUM
of the processes' gradients (one ``all_reduce`` per parameter after the backward pass, through
PyTorch's collectives: gloo on the CPU, NCCL on CUDA) is the gradient of the combined batch.
Clipping and the optimiser step then run alike everywhere, so the weights stay equal; the
logged losses are the combined batch's (an ``all_reduce`` too), dev and test evaluation runs in
every process (same weights, same score, so early stopping agrees), and only rank 0 writes.

Why not ``torch.nn.parallel.DistributedDataParallel`` itself: a step here calls more of the
method than ``forward`` (extra losses, penalties, hooks), and most steps leave some task heads
unused, which DDP handles only with ``find_unused_parameters`` (a graph walk every step); one
all-reduce of every gradient after the weighting's backward is what DDP computes, without
either.

What must refuse, and does (one line, before training): a weighting whose combination is not
a fixed weighted sum of the task losses (uncertainty weighting's log-variance term would be
counted once per process; GradNorm and the Jacobian aggregators read per-task gradients), a
method with extra losses (adversarial, orthogonality: not means over rows, so the share scaling
is not exact), a method whose rows interact or that changes its parameters while training, and
``--workers`` / ``--scheduler`` (each process trains every unit in turn).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError

_active: "DataParallel | None" = None


@dataclass
class DataParallel:
    """This process's place in a data-parallel group."""

    rank: int
    world: int
    local_rank: int
    #: "gloo" (CPU tensors) or "nccl" (CUDA tensors only)
    backend: str = "gloo"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The process's own GPU (``cuda:<LOCAL_RANK>``) when training on CUDA."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" else device

    def check(self, model, weighting) -> None:
        """Refuse what data-parallel training cannot make exact (see the module docstring)."""
        def refuse(what: str) -> None:
            raise ConfigError(f"data-parallel training (--ddp / torchrun) cannot train {what}")

        if not getattr(weighting, "linear_in_losses", False):
            refuse(f"weighting {type(weighting).__name__}: its combination of the task losses is not "
                   "a fixed weighted sum (use fixed or dwa)")
        if model.extra_loss_names:
            refuse(f"method {type(model).__name__}: its extra losses "
                   f"({', '.join(model.extra_loss_names)}) are not means over rows")
        if model.rows_interact or model.needs_collections:
            refuse(f"method {type(model).__name__}: its rows interact within collections")
        if model.changes_parameters:
            refuse(f"method {type(model).__name__}: it changes its parameters while training")

    def shard(self, parts: Sequence[tuple]) -> list[tuple]:
        """This process's rows of a step's parts (task, rows[, source]): rows r, r + N, ...
        of each (parts left empty are dropped)."""
        mine = []
        for part in parts:
            share = np.asarray(part[1])[self.rank::self.world]
            if len(share):
                mine.append((part[0], share, *part[2:]))
        return mine

    def all_reduce_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Sum every gradient over the processes. A parameter that got a gradient in some
        process counts as zeros where it got none; one that got none anywhere (the head of a
        task absent from the step) keeps ``grad = None``, as in one process: Adam skips it
        there, and a zero gradient would still move it by its momentum."""
        import torch.distributed as dist

        parameters = list(parameters)
        anywhere = self.all_reduce_sum(torch.tensor([p.grad is not None for p in parameters],
                                                    dtype=torch.float32))
        for p, count in zip(parameters, anywhere.tolist()):
            if count == 0:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over the processes of a small tensor (on the CPU; NCCL reduces on the GPU)."""
        import torch.distributed as dist

        where = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        values = values.to(where, copy=True)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values.cpu()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` in every process."""
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def current() -> DataParallel | None:
    """The data-parallel group this process was started in (torchrun's ``WORLD_SIZE`` > 1),
    joined on first use; None for an ordinary single process."""
    global _active
    if _active is not None:
        return _active
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.get_backend() == "nccl":
        torch.cuda.set_device(local_rank)
    _active = DataParallel(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    return _active


def join(rank: int, world: int, init_method: str) -> DataParallel:
    """Join a group without torchrun (tests, notebooks): gloo, the given rendezvous."""
    global _active
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=init_method)
    _active = DataParallel(rank, world, rank)
    return _active


def leave() -> None:
    global _active
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    _active = None
