"""One training run, data-parallel under ``torchrun`` (torch DistributedDataParallel).

``torchrun --nproc_per_node N -m rll train ...`` starts N processes; :func:`rll.training.run.train`
calls :func:`join`, which reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), opens the process group (NCCL on GPUs, gloo
on the CPU) and returns a :class:`Group`.  The training loop asks the group, at a few narrow
points, to do what data parallelism needs; outside torchrun :data:`SINGLE` answers every
question as the one-process run always did, so single-process runs are unchanged bit for bit.

What the group does to the run:

* **The global batch is the paper's.**  Every rank draws the same permutation and the same
  augmentation from the run's seeded generators, builds the same global batch of
  ``batch_size`` examples, and keeps every N-th example (:meth:`Group.shard`, rank r the
  examples r, r + N, …).  This is the seeded sampler: unlike
  :class:`torch.utils.data.DistributedSampler` it keeps the single-process run's order (and
  pads nothing), so an N-process run visits exactly the batches a one-process run visits.
* **Gradients are those of the global loss.**  DDP averages the ranks' gradients; each rank
  scales its shard's loss by ``N × n_r / b`` for the mean losses of ``fidelity="paper"`` and by
  ``N`` for the summed losses of ``fidelity="released"`` (:meth:`Group.loss_weight`), so the
  averaged gradient is the gradient of the loss over the whole batch, also for a last batch
  that does not split evenly.  The logged loss is summed over ranks the same way.
* **Adversarial examples are generated per shard**: an attack is per example, so the result
  matches a single-process run up to batch-norm statistics (each rank normalises over its own
  shard), the random numbers of dropout masks and attack starts (drawn per rank), and floating
  point.  ``tests/test_scale.py`` measures the difference.
* **Rank 0 alone** claims the run in the results store, writes the checkpoints, evaluates and
  writes the record (its provenance says ``world_size``); the other ranks return ``None``
  after the last epoch, or, when the run is evaluated with AutoAttack, after measuring it on
  rank 0's model for rank 0 (:meth:`Group.sync_module`, :meth:`Group.gather`): AutoAttack's
  standard configuration on rank 1, ``aa-apgd`` on rank 2, while rank 0 measures the rest.
  Every component is seeded, so the record is the one a single process writes (``tests/test_distributed.py``).  Every rank resumes from the same checkpoint (checked: all ranks must
  read the same epoch), which holds each rank's random-number state.

Checkpoints, records and the store key are those of a single-process run: the number of
processes is how a run was trained, not what was trained, and a run may be resumed with
another number of processes (then the ranks' random streams are re-derived from the seed).
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch

__all__ = ["Group", "SINGLE", "join", "BACKENDS"]

#: Process-group backend by device type.
BACKENDS = {"cuda": "nccl", "cpu": "gloo"}
_RANK_SEED_SALT = 7919


@dataclass(frozen=True)
class Group:
    """The processes training one run: ``rank`` of ``world_size`` (``local_rank`` on its node).

    With ``world_size == 1`` every method is the identity of the one-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that claims, checkpoints, evaluates and writes the record."""
        return self.rank == 0

    # ------------------------------------------------------------------ the batch
    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch: rows ``rank, rank + N, …``."""
        return batch if self.world_size == 1 else batch[self.rank::self.world_size]

    def loss_weight(self, n_local: int, n_global: int, summed: bool) -> float:
        """This rank's share of the global loss: ``n_local / n_global`` for a mean loss, 1 for
        a summed one (1 in a one-process run).  The global loss is the sum of the ranks'
        ``weight × loss``; DDP averages gradients, so each rank backpropagates
        ``world_size × weight × loss``."""
        if self.world_size == 1 or summed:
            return 1.0
        return n_local / n_global

    def check_batches(self, n: int, batch_size: int) -> None:
        """Every global batch of an epoch of ``n`` examples must give each rank an example."""
        last = n % batch_size or batch_size
        if min(batch_size, last, n) < self.world_size:
            raise ValueError(
                f"cannot split batches over {self.world_size} processes: batch_size {batch_size}, "
                f"{n} training examples (last batch {last}); every batch needs at least one example "
                f"per process — use fewer processes or another train_size")

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (every rank gets the sum)."""
        if self.world_size == 1:
            return values
        values = values.clone()
        torch.distributed.all_reduce(values)
        return values

    def agree_stop(self, signum: int | None, device: torch.device) -> int | None:
        """The stop signal any rank received (the largest number if several), or None, the same on
        every rank: the ranks of a data-parallel run stop at the same step
        (:mod:`rll.training.stop`).  In a one-process run, ``signum`` itself."""
        if self.world_size == 1:
            return signum
        vote = torch.tensor([signum or 0], device=device)
        torch.distributed.all_reduce(vote, op=torch.distributed.ReduceOp.MAX)
        return int(vote.item()) or None

    # ------------------------------------------------------------------ the model
    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` under DistributedDataParallel (it is returned as is in a one-process run).
        DDP broadcasts rank 0's parameters and buffers at construction."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)

    # ------------------------------------------------------------------ decisions and state
    def decide(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` run on rank 0 alone; every rank returns its value or raises
        its exception (store look-ups and claims are taken once, not once per rank)."""
        if self.world_size == 1:
            return fn(*args, **kwargs)
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn(*args, **kwargs))
            except Exception as err:  # noqa: BLE001 — re-raised on every rank below
                box[0] = ("error", err)
        torch.distributed.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise value
        return value

    def check_same(self, value: Any, what: str) -> None:
        """Raise unless every rank holds the same ``value`` (e.g. the epoch it resumed from)."""
        if self.world_size == 1:
            return
        seen: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(seen, value)
        if any(v != seen[0] for v in seen):
            raise RuntimeError(f"the {self.world_size} processes disagree on {what}: {seen} (rank order); "
                               "is the checkpoint directory shared by every node?")

    def seed_rank(self, seed: int) -> None:
        """Give ranks > 0 their own torch random stream (dropout masks, attack starts); rank 0
        keeps the one-process run's stream."""
        if self.rank > 0:
            torch.manual_seed(seed * 1_000_003 + _RANK_SEED_SALT * self.rank)

    def rng_states(self, device: torch.device) -> dict:
        """Every rank's torch (and CUDA) random state, gathered for rank 0's checkpoint as
        ``{"ranks": [...]}`` (empty in a one-process run: its state is the checkpoint's own)."""
        if self.world_size == 1:
            return {}
        mine = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            mine["cuda"] = torch.cuda.get_rng_state(device)
        states: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(states, mine)
        return {"ranks": states}

    def restore_rng(self, rng: dict, device: torch.device, seed: int, epoch: int) -> None:
        """Set this rank's random state from a checkpoint's ``rng``: its own entry when the
        checkpoint was written by as many processes, else (ranks > 0) a stream derived from
        ``seed`` and ``epoch``."""
        if self.world_size == 1:
            return
        ranks = rng.get("ranks") or []
        if len(ranks) == self.world_size:
            torch.set_rng_state(ranks[self.rank]["torch"])
            if device.type == "cuda" and "cuda" in ranks[self.rank]:
                torch.cuda.set_rng_state(ranks[self.rank]["cuda"], device)
        elif self.rank > 0:
            torch.manual_seed((seed * 1_000_003 + _RANK_SEED_SALT * self.rank) * 1_009 + epoch)

    # ------------------------------------------------------------------ evaluation
    def sync_module(self, model: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's ``model`` (training keeps the
        parameters equal, but each rank updates its own batch-norm statistics), so every rank
        evaluates rank 0's model.  Collective: every rank calls it at the same point."""
        if self.world_size == 1:
            return
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dense = tensor.contiguous()
                torch.distributed.broadcast(dense, src=0)
                if dense.data_ptr() != tensor.data_ptr():
                    tensor.copy_(dense)

    def open_channel(self, hours: float = 48.0) -> Any:
        """A process group over every rank whose collectives wait up to ``hours``: one rank's
        share of an evaluation may outlast the default group's wait (30 minutes for gloo).
        Collective: every rank calls it at the same point.  None in a one-process run."""
        if self.world_size == 1:
            return None
        from datetime import timedelta

        return torch.distributed.new_group(timeout=timedelta(hours=hours))

    def gather(self, value: Any, channel: Any = None) -> list[Any] | None:
        """Every rank's ``value`` in rank order on rank 0, None on the others (``[value]`` in a
        one-process run).  Collective, over ``channel`` (:meth:`open_channel`) if given."""
        if self.world_size == 1:
            return [value]
        seen: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(seen, value, group=channel)
        return seen if self.is_main else None

    def provenance(self) -> dict:
        """What a record says about the processes: ``world_size`` (and the backend)."""
        out: dict[str, Any] = {"world_size": self.world_size}
        if self.backend:
            out["distributed_backend"] = self.backend
        return out


#: The one-process run.
SINGLE = Group()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def join(device: str | torch.device | None) -> tuple[Group, str | torch.device | None]:
    """The group of processes this one trains with, and the device it should use.

    Outside torchrun (``WORLD_SIZE`` unset or 1, no process group open): ``(SINGLE, device)``
    unchanged.  Under torchrun: the default process group, opened here if it is not yet (NCCL
    for CUDA, gloo for the CPU; closed at exit), and for CUDA the device ``cuda:LOCAL_RANK``
    (``device`` None means CUDA when available).  A CUDA index other than ``LOCAL_RANK`` is
    refused: every rank would share one GPU."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return SINGLE, device
    local_rank = _env_int("LOCAL_RANK", 0)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is not None and device.index != local_rank:
            raise ValueError(f"under torchrun each process uses the GPU of its LOCAL_RANK ({local_rank}); "
                             f"got device {device}: pass --device cuda")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type not in BACKENDS:
        raise ValueError(f"data-parallel training runs on devices of type {', '.join(BACKENDS)}; got {device}")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=BACKENDS[device.type])
        atexit.register(_close)
    group = Group(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                  local_rank=local_rank, backend=str(torch.distributed.get_backend()))
    return (SINGLE if group.world_size == 1 else group), device


def _close() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
