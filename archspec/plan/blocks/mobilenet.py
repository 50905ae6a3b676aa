"""MobileNetV2's inverted residual (Sandler et al. 2018; torchvision's InvertedResidual): a 1x1 conv expands the
input by t, a depthwise k x k conv (the stride) filters each channel, and a linear 1x1 conv projects to the
output width, with no activation after it. The shortcut is the identity, and exists only where the stride is 1
and the width unchanged.

Module names are torchvision's (`conv.0` the expansion, `conv.1` the depthwise conv, `conv.2` and `conv.3`
the projection and its norm; one fewer where t is 1), so its weights load.
"""

from __future__ import annotations

from archspec.lang.blocks import InvertedResidualParams
from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage
from archspec.plan.ops import Op, Residual, Sequence
from archspec.plan.walker import Walker, numbered


def inverted_residual(walker: Walker, args: BlockArgs) -> Residual:
    knobs = args.knobs
    assert isinstance(knobs, InvertedResidualParams)
    cin, size, cout = walker.channels, walker.size, args.width
    inner = round(cin * knobs.expand_ratio)
    if inner < 1:
        raise walker.problem(f"the inner width rounds to 0 (input width {cin} x expand_ratio {knobs.expand_ratio:g})")
    layers: list[Op] = []
    if knobs.expand_ratio != 1:
        layers.append(walker.conv_norm_act(walker.conv(cin, inner, 1, size), knobs.activation))
    d = args.first_dilation
    depthwise = walker.conv(
        inner, inner, knobs.kernel, size, stride=args.stride, padding=(knobs.kernel - 1) // 2 * d, dilation=d,
        groups=inner,
    )  # fmt: skip
    layers.append(walker.conv_norm_act(depthwise, knobs.activation))
    project = walker.conv(inner, cout, 1, depthwise.out_size)
    layers.append(project)
    if walker.has_norm:
        layers.append(walker.norm(cout, project.out_size))
    residual = args.stride == 1 and cin == cout
    walker.channels, walker.size = cout, project.out_size
    drop_path = walker.next_drop_path()
    return Residual(
        kind="inverted_residual",
        in_channels=cin,
        out_channels=cout,
        stride=args.stride,
        in_size=size,
        out_size=project.out_size,
        pre=(),
        body=(("conv", Sequence(numbered(layers))),),
        shortcut=None,
        shortcut_kind="identity" if residual else "none",
        shortcut_name="downsample",
        shortcut_first=False,
        shortcut_from_pre=False,
        post=(),
        drop_path=drop_path if residual else 0.0,
        zero_init=("conv", str(len(layers) - 1)) if residual else None,
    )


INVERTED_RESIDUAL = BlockKind(
    params=InvertedResidualParams,
    family="mobilenet",
    residual=True,
    plan_stage=plan_residual_stage(inverted_residual),
    joins=frozenset({"resnet", "regnet", "efficientnet"}),
    width_quantum=lambda params: 8,
)
