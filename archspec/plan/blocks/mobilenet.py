"""MobileNetV2's inverted residual (Sandler et al. 2018; torchvision's InvertedResidual): a 1x1 conv expands the
input by t, a depthwise k x k conv (the stride) filters each channel, and a linear 1x1 conv projects to the
output width, with no activation after it. The shortcut is the identity, and exists only where the stride is 1
and the width unchanged.

Module names are torchvision's (`conv.0` the expansion, `conv.1` the depthwise conv, `conv.2` and `conv.3`
the projection and its norm; one fewer where t is 1), so its weights load.
"""

from __future__ import annotations

from archspec.lang.blocks import InvertedResidualParams
from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage, written_at
from archspec.plan.ops import Conv, Op, Residual, Sequence, Size2
from archspec.plan.walker import Walker, numbered


def depthwise_conv(walker: Walker, args: BlockArgs, channels: int, kernel: int, size: Size2) -> Conv:
    """The depthwise k x k conv of an inverted residual: it carries the block's stride (and the dilation of the
    convs that see the block's input)."""
    d = args.first_dilation
    return walker.conv(
        channels, channels, kernel, size, stride=args.stride, padding=(kernel - 1) // 2 * d, dilation=d,
        groups=channels,
    )  # fmt: skip


def inverted_residual_record(
    kind: str,
    body: str,
    layers: list[Op],
    *,
    in_channels: int,
    out_channels: int,
    stride: int,
    in_size: Size2,
    out_size: Size2,
    drop_path: float,
    zero_init: tuple[str, ...],
) -> Residual:
    """An inverted residual's record (MobileNetV2's, EfficientNet's MBConv): `layers` numbered in one sequence
    registered as `body`, and the identity shortcut only where the stride is 1 and the width unchanged; only
    there is the branch dropped (`drop_path`) and its last norm zeroed (`zero_init`, its path inside `body`)."""
    residual = stride == 1 and in_channels == out_channels
    return Residual(
        kind=kind,
        in_channels=in_channels,
        out_channels=out_channels,
        stride=stride,
        in_size=in_size,
        out_size=out_size,
        body=((body, Sequence(numbered(layers))),),
        shortcut=None,
        shortcut_kind="identity" if residual else "none",
        drop_path=drop_path if residual else 0.0,
        zero_init=(body, *zero_init) if residual else None,
    )


def inverted_residual(walker: Walker, args: BlockArgs) -> Residual:
    knobs = args.knobs
    assert isinstance(knobs, InvertedResidualParams)
    cin, size, cout = walker.channels, walker.size, args.width
    inner = round(cin * knobs.expand_ratio)
    if inner < 1:
        message = f"the inner width rounds to 0 (input width {cin} x expand_ratio {knobs.expand_ratio:g})"
        where = written_at(walker, args.stage, args.stage_index, type(args.knobs), ("expand_ratio",))
        raise walker.problem_at(where or walker.path, message)
    layers: list[Op] = []
    if knobs.expand_ratio != 1:
        layers.append(walker.conv_norm_act(walker.conv(cin, inner, 1, size), knobs.activation))
    depthwise = depthwise_conv(walker, args, inner, knobs.kernel, size)
    layers.append(walker.conv_norm_act(depthwise, knobs.activation))
    project = walker.conv(inner, cout, 1, depthwise.out_size)
    layers.append(project)
    if walker.has_norm:
        layers.append(walker.norm(cout, project.out_size))
    walker.channels, walker.size = cout, project.out_size
    return inverted_residual_record(
        "inverted_residual",
        "conv",
        layers,
        in_channels=cin,
        out_channels=cout,
        stride=args.stride,
        in_size=size,
        out_size=project.out_size,
        drop_path=walker.next_drop_path(),
        zero_init=(str(len(layers) - 1),),
    )


INVERTED_RESIDUAL = BlockKind(
    params=InvertedResidualParams,
    family="mobilenet",
    residual=True,
    plan_stage=plan_residual_stage(inverted_residual),
    joins=frozenset({"resnet", "regnet", "efficientnet"}),
    width_quantum=lambda params: 8,
)
