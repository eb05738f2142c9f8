# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Stop a training run at the first non-finite loss, before a NaN can reach the weights or a checkpoint.

Attach :class:`StopOnNonFiniteLoss` first among a trainer's handlers. It checks

- the loss of every iteration, right after it is computed (``IterationEvents.LOSS_COMPLETED``, before the
  backward pass and the optimizer step), so a NaN/Inf loss never updates the weights;
- the network's weights at every epoch end, before the checkpoint savers and the validation that run on the
  same event (they are attached after it), so a NaN that slipped in through a step is never saved.

Either raises :class:`NonFiniteTrainingError` naming the epoch and iteration; the last checkpoint written at
the previous epoch end and the best model stay untouched. Under ``torch.distributed`` every rank learns about a
non-finite loss on any rank (one tiny all-reduce per iteration), so all ranks stop at the same iteration instead
of hanging in the next gradient all-reduce.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys


class NonFiniteTrainingError(RuntimeError):
    """Training produced a NaN or infinite loss, gradient or weight; the message says where."""


def training_position(engine: Engine) -> str:
    """``"epoch E, iteration I of L (iteration N overall)"`` for the engine's current iteration."""
    state = engine.state
    length = state.epoch_length or 0
    within = (state.iteration - 1) % length + 1 if length else state.iteration
    return f"epoch {state.epoch}, iteration {within} of {length} ({state.iteration} overall)"


def non_finite_entries(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` that hold a NaN or an infinity."""
    return [
        name
        for name, tensor in tensors.items()
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all())
    ]


class StopOnNonFiniteLoss:
    """Raise :class:`NonFiniteTrainingError` at the first non-finite loss or, at an epoch end, weight.

    Args:
        loss_key: where the trainer keeps the loss in ``engine.state.output``.
    """

    def __init__(self, loss_key: str = CommonKeys.LOSS) -> None:
        self.loss_key = loss_key

    def attach(self, engine: Engine) -> None:
        """Check every loss of ``engine`` and its network's weights at every epoch end."""
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self.check_loss)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.check_weights)

    def check_loss(self, engine: Engine) -> None:
        """Raise unless this iteration's loss is finite on every rank."""
        loss = engine.state.output[self.loss_key]
        finite_here = bool(torch.isfinite(loss.detach()).all())
        finite_everywhere = _on_every_rank(finite_here, loss.device)
        if finite_everywhere:
            return
        where = f"is {loss.detach().float().mean().item()}" if not finite_here else "is non-finite on another rank"
        raise NonFiniteTrainingError(
            f"training stopped: the loss {where} at {training_position(engine)}. The weights were not updated "
            "with it and no checkpoint was written after it: the last checkpoint (saved at the previous epoch end) "
            "and the best model are intact. Lower the learning rate or keep gradient clipping on (grad_clip_norm) "
            "and resume."
        )

    def check_weights(self, engine: Engine) -> None:
        """Raise if the network holds a non-finite weight or buffer, before this epoch's checkpoint is saved."""
        bad = non_finite_entries(engine.network.state_dict())
        if bad:
            shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            raise NonFiniteTrainingError(
                f"training stopped: {len(bad)} weight tensor(s) of the network are NaN/Inf at the end of "
                f"{training_position(engine)} ({shown}). This epoch's checkpoint was not written; the previous "
                "one and the best model are intact."
            )


def _on_every_rank(flag: bool, device: torch.device) -> bool:
    """``flag`` and-ed over all ranks of the default process group (just ``flag`` outside distributed runs)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    bad = torch.tensor([0.0 if flag else 1.0], device=device)
    dist.all_reduce(bad)
    return bad.item() == 0.0
