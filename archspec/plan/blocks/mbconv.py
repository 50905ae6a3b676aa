"""EfficientNet's MBConv (Tan and Le 2019; torchvision's MBConv): MobileNetV2's inverted residual with
squeeze-and-excitation on the depthwise conv's output, reduced from the block's input width, SiLU, and stochastic
depth on the residual branch.

The 1x1 expansion rounds its width to a multiple of 8 and is left out where that is the input width; the
projection is a conv and norm without activation; the identity shortcut exists only where the stride is 1 and the
width unchanged, and only there is the branch dropped, with torchvision's rate: `drop_path` x (the block's index
in the network / the number of blocks). Module names are torchvision's (`block.0` ... `block.3`,
`block.2.fc1`, `block.2.fc2`), so its weights load.
"""

from __future__ import annotations

from archspec.lang.blocks import MBConvParams
from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage
from archspec.plan.blocks.mobilenet import depthwise_conv, inverted_residual_record
from archspec.plan.blocks.residual import squeeze_excite
from archspec.plan.ops import Op, Residual
from archspec.plan.shapes import round_width
from archspec.plan.walker import Walker


def mbconv(walker: Walker, args: BlockArgs) -> Residual:
    knobs = args.knobs
    assert isinstance(knobs, MBConvParams)
    cin, size, cout = walker.channels, walker.size, args.width
    inner = round_width(cin * knobs.expand_ratio, 8)
    layers: list[Op] = []
    if inner != cin:
        layers.append(walker.conv_norm_act(walker.conv(cin, inner, 1, size), knobs.activation))
    depthwise = depthwise_conv(walker, args, inner, knobs.kernel, size)
    layers.append(walker.conv_norm_act(depthwise, knobs.activation))
    if knobs.se_ratio > 0:
        reduced = max(1, int(cin * knobs.se_ratio))
        layers.append(squeeze_excite(reduced, inner, depthwise.out_size, knobs.activation))
    project = walker.conv_norm_act(walker.conv(inner, cout, 1, depthwise.out_size), None)
    layers.append(project)
    index = walker.block_index
    walker.next_drop_path()
    walker.channels, walker.size = cout, depthwise.out_size
    return inverted_residual_record(
        "mbconv",
        "block",
        layers,
        in_channels=cin,
        out_channels=cout,
        stride=args.stride,
        in_size=size,
        out_size=depthwise.out_size,
        drop_path=walker.spec.drop_path * index / walker.total_blocks,
        zero_init=(str(len(layers) - 1), project.items[-1][0]),
    )


MBCONV = BlockKind(
    params=MBConvParams,
    family="efficientnet",
    residual=True,
    plan_stage=plan_residual_stage(mbconv),
    joins=frozenset({"resnet", "regnet", "mobilenet"}),
    width_quantum=lambda params: 8,
)
