"""The planner's running state, and the op makers every stem, block and head uses.

A `Walker` moves through the network once, keeping the current channel count,
spatial size, total stride and dilation; each op maker checks what it can
against that place (a map shrinking to nothing, a group norm that does not
divide) and raises a `PlanProblem` at the spec field responsible.
"""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import format_path
from archspec.lang.schema import Spec
from archspec.plan.ops import Act, Conv, Items, MaxPool, Norm, Op, Sequence, Size2
from archspec.plan.shapes import as_size, conv_out, pool_out

# Plausibility limits, far beyond any real network (RegNetY-128GF has 6.4e8 parameters and its largest
# map 2.4e7 elements): a spec past them is a typo, refused before anything is counted or built.
MAX_PARAMS = 10**11
MAX_MAP_ELEMENTS = 10**10


@dataclass(frozen=True)
class PlanProblem:
    """One reason a spec that validates field by field describes an impossible network."""

    path: tuple[str | int, ...]
    message: str
    # A rule about a field's presence is located at its key; a value that cannot work, at the value.
    key: bool = False


class PlanError(Exception):
    """Raised by the planner with every problem it found; `archspec.plan.load` locates them in the file."""

    def __init__(self, problems: list[PlanProblem] | PlanProblem):
        self.problems = [problems] if isinstance(problems, PlanProblem) else list(problems)
        super().__init__("; ".join(f"{format_path(p.path)}: {p.message}" for p in self.problems))


class Walker:
    """Walks the spec once, tracking channels, spatial size, total stride and dilation."""

    def __init__(self, spec: Spec, total_blocks: int):
        self.spec = spec
        self.channels = spec.input.channels
        self.size: Size2 = as_size(spec.input.size)
        self.total_stride = 1
        self.dilation = 1
        self.path: tuple[str | int, ...] = ("input", "size")
        self.has_norm = spec.norm != "none"
        self.block_index = 0
        self.total_blocks = total_blocks
        self.params = 0

    def problem(self, message: str, *field: str | int) -> PlanError:
        """A PlanError at the current place (or a field below it)."""
        return PlanError(PlanProblem(self.path + field, message))

    def problem_at(self, path: tuple[str | int, ...], message: str) -> PlanError:
        """A PlanError at a field given by its whole path."""
        return PlanError(PlanProblem(path, message))

    def _check_size(self, out: Size2, what: str) -> None:
        if min(out) < 1:
            h, w = as_size(self.spec.input.size)
            # Stages cannot help a map the stem has already emptied; its own stride (a patch) can.
            if self.path[:1] != ("stem",):
                other = " or fewer stride-2 stages"
            else:
                other = " or a smaller stem.patch" if self.spec.stem.type == "patchify" else ""
            raise self.problem(
                f"the feature map shrinks to {out[0]}x{out[1]} at {what} for a {h}x{w} input; use a larger "
                f"input.size{other}"
            )

    def conv(
        self,
        cin: int,
        cout: int,
        kernel: int,
        size: Size2,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool | None = None,
    ) -> Conv:
        out = (
            conv_out(size[0], kernel, stride, padding, dilation),
            conv_out(size[1], kernel, stride, padding, dilation),
        )
        if min(out) < 1:  # (the message is made only when it is needed: convs are planned by the thousand)
            self._check_size(out, f"a {kernel}x{kernel} conv")
        self.add_params(cout * (cin // groups) * kernel * kernel)
        if cout * out[0] * out[1] > MAX_MAP_ELEMENTS:
            raise self.problem(
                f"a feature map of {cout} x {out[0]} x {out[1]} = {cout * out[0] * out[1]:.3g} elements per image; "
                f"archspec refuses maps over {MAX_MAP_ELEMENTS:.0e} (a typo in a width or the input size?)"
            )
        return Conv(
            cin,
            cout,
            kernel,
            size,
            out,
            stride,
            padding,
            dilation,
            groups,
            (not self.has_norm) if bias is None else bias,
        )

    def add_params(self, count: int) -> None:
        """Count parameters as they are planned; past MAX_PARAMS the spec is refused at the current place."""
        self.params += count
        if self.params > MAX_PARAMS:
            raise self.problem(
                f"the network passes {MAX_PARAMS:.0e} parameters here ({self.params:.3g} so far; 400 GB of float32 "
                "weights); "
                "archspec refuses specs this large (a typo in a width or depth?)"
            )

    def norm(self, channels: int, size: Size2) -> Norm:
        spec = self.spec
        if spec.norm == "group":
            if channels % spec.norm_groups:
                field = "norm_groups" if "norm_groups" in spec.model_fields_set else "norm"
                raise PlanError(
                    PlanProblem(
                        (field,),
                        f"group norm with {spec.norm_groups} groups needs channel counts divisible by it; "
                        f"{format_path(self.path)} has {channels} channels",
                    )
                )
            if channels // spec.norm_groups * size[0] * size[1] == 1:
                # Each group would hold one value, which normalises to zero: the output would be the bias alone
                # (and torch refuses such a norm for one image).
                field = "norm_groups" if "norm_groups" in spec.model_fields_set else "norm"
                raise PlanError(
                    PlanProblem(
                        (field,),
                        f"group norm with {spec.norm_groups} groups at {format_path(self.path)} "
                        f"({channels} channels on a 1x1 map) normalises single values, which makes them all zero; "
                        "use fewer groups",
                    )
                )
            return Norm("group", channels, size, spec.norm_groups)
        return Norm("batch", channels, size)

    def norm_act(
        self,
        items: list[tuple[str, Op]],
        name_norm: str | None,
        name_act: str | None,
        channels: int,
        size: Size2,
        activation: str,
    ) -> None:
        """Append a norm (where the spec has norms) and an activation under the given names."""
        if self.has_norm and name_norm:
            items.append((name_norm, self.norm(channels, size)))
        if name_act:
            items.append((name_act, Act(activation)))

    def conv_norm_act(self, conv: Conv, activation: str | None) -> Sequence:
        """torchvision's Conv2dNormActivation: conv, norm, activation, numbered from 0."""
        items: list[Op] = [conv]
        if self.has_norm:
            items.append(self.norm(conv.out_channels, conv.out_size))
        if activation is not None:
            items.append(Act(activation))
        return Sequence(numbered(items))

    def max_pool(self, kernel: int, stride: int, padding: int, size: Size2) -> MaxPool:
        out = (pool_out(size[0], kernel, stride, padding, False), pool_out(size[1], kernel, stride, padding, False))
        self._check_size(out, f"a {kernel}x{kernel} max pool")
        return MaxPool(kernel, stride, padding, self.channels, size, out)

    def drop_path_rate(self) -> float:
        """The stochastic-depth rate of the next block: linear from 0 to `drop_path` over the network."""
        return self.spec.drop_path * self.block_index / max(1, self.total_blocks - 1)

    def next_drop_path(self) -> float:
        """The next block's stochastic-depth rate (`drop_path_rate`), moving on to the block after it."""
        rate = self.drop_path_rate()
        self.block_index += 1
        return rate


_NUMBERS = tuple(str(i) for i in range(16))


def numbered(ops: list[Op]) -> Items:
    """Ops named 0, 1, 2, ... as in an `nn.Sequential`."""
    if len(ops) <= len(_NUMBERS):
        return tuple(zip(_NUMBERS, ops, strict=False))
    return tuple((str(i), op) for i, op in enumerate(ops))
