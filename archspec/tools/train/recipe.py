"""The training recipe: everything that decides the trained weights, checked when it is made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from archspec.errors import Mark, Problem, SpecError

# Bounds that keep a typo from reaching torch as an absurd number.
MAX_EPOCHS = 1_000_000
MAX_BATCH = 2**31 - 1
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights. Defaults: the paper's CIFAR recipe (section 4.2)."""

    epochs: int = 30
    batch: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    seed: int = 0
    amp: str | None = None

    def __post_init__(self) -> None:
        def whole(value: object, low: int, high: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        def number(value: object) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        checks = [
            (whole(self.epochs, 1, MAX_EPOCHS), "--epochs", f"needs a whole number of epochs from 1 to {MAX_EPOCHS:,}"),
            (whole(self.batch, 1, MAX_BATCH), "--batch", f"needs a batch size from 1 to {MAX_BATCH:,}"),
            (number(self.lr) and self.lr > 0, "--lr", "needs a positive, finite learning rate"),
            (number(self.momentum) and 0 <= self.momentum < 1, "--momentum", "takes a value in [0, 1)"),
            (
                number(self.weight_decay) and self.weight_decay >= 0,
                "--weight-decay",
                "needs a finite value of at least 0",
            ),
            (self.schedule in ("step", "cosine"), "--schedule", "is step or cosine"),
            (whole(self.seed, 0, MAX_SEED), "--seed", f"needs a whole number from 0 to {MAX_SEED}"),
            (self.amp in (None, "bf16", "fp16"), "--amp", "is bf16 or fp16"),
        ]
        for ok, option, message in checks:
            if not ok:
                raise SpecError(
                    Problem(Mark(f"{option} {getattr(self, option[2:].replace('-', '_'))}"), option[2:], message)
                )

    def lr_at(self, epoch: int) -> float:
        """Learning rate of a 0-based epoch. step: the paper divides by 10 at 32k and 48k of its 64k
        iterations, i.e. at 1/2 and 3/4 of training, whatever the length; cosine: to zero over the run."""
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * epoch / self.epochs))
        divisor: float = 10 ** sum(epoch >= math.ceil(self.epochs * fraction) for fraction in (0.5, 0.75))
        return self.lr / divisor
