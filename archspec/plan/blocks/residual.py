"""ResNet's blocks: basic (3x3, 3x3), bottleneck (1x1, 3x3, 1x1) and plain (basic without a shortcut).

Module names are torchvision's (`conv1`, `bn1`, ..., `downsample`), so its weights load;
pre-activation blocks (He et al. 2016) follow timm's PreAct naming (`bn1`/`act1` first).
"""

from __future__ import annotations

from archspec.lang.blocks import BasicParams, BottleneckParams, PlainParams
from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage, se_reduced_width
from archspec.plan.ops import (
    Act,
    AdaptivePool,
    AvgPool,
    Conv,
    Identity,
    Items,
    Op,
    Residual,
    Sequence,
    Size2,
    SqueezeExcite,
    ZeroPadShortcut,
)
from archspec.plan.shapes import pool_out
from archspec.plan.walker import Walker


def residual_block(walker: Walker, args: BlockArgs) -> Residual:
    """One basic, bottleneck or plain block at the walker's place."""
    knobs = args.knobs
    assert isinstance(knobs, BasicParams | BottleneckParams | PlainParams)
    kind = knobs.type
    cin, size = walker.channels, walker.size
    expansion = knobs.expansion or (4 if kind == "bottleneck" else 1)
    cout = args.width * expansion
    preact = not isinstance(knobs, PlainParams) and knobs.preact
    activation = knobs.activation
    pre: list[tuple[str, Op]] = []
    body: list[tuple[str, Op]] = []
    if preact:
        walker.norm_act(pre, "bn1", "act1", cin, size, activation)
        if not walker.has_norm:
            # With no norm before it, act1 would run in place on the block's own input.
            pre = [(name, Act(activation, inplace=False)) for name, _ in pre]
    norm_names = iter(["bn2", "bn3", "bn4"] if preact else ["bn1", "bn2", "bn3"])
    if isinstance(knobs, BottleneckParams):
        inner, groups = bottleneck_widths(walker, args, knobs)
        s1, s3 = (args.stride, 1) if knobs.stride_in == "1x1" else (1, args.stride)
        c1 = walker.conv(cin, inner, 1, size, stride=s1)
        body.append(("conv1", c1))
        walker.norm_act(body, next(norm_names), "act2" if preact else "act1", inner, c1.out_size, activation)
        d = args.first_dilation
        c2 = walker.conv(inner, inner, 3, c1.out_size, stride=s3, padding=d, dilation=d, groups=groups)
        body.append(("conv2", c2))
        walker.norm_act(body, next(norm_names), "act3" if preact else "act2", inner, c2.out_size, activation)
        last = walker.conv(inner, cout, 1, c2.out_size)
        body.append(("conv3", last))
        last_conv = "conv3"
    else:
        d = args.first_dilation
        c1 = walker.conv(cin, cout, 3, size, stride=args.stride, padding=d, dilation=d)
        body.append(("conv1", c1))
        walker.norm_act(body, next(norm_names), "act2" if preact else "act1", cout, c1.out_size, activation)
        # timm's rule: the second 3x3 already runs at this stage's dilation.
        last = walker.conv(cout, cout, 3, c1.out_size, padding=args.dilation, dilation=args.dilation)
        body.append(("conv2", last))
        last_conv = "conv2"
    out_size = last.out_size
    zero_init = last_conv
    if not preact and walker.has_norm:
        zero_init = next(norm_names)
        body.append((zero_init, walker.norm(cout, out_size)))
    if knobs.se:
        body.append(("se", squeeze_excite(se_reduced_width(knobs.se, cin, cout), cout, out_size)))
    how = f" (width {args.width} x expansion {expansion})" if expansion > 1 else ""
    if kind == "plain":
        shortcut, shortcut_kind = None, "none"
    else:
        shortcut, shortcut_kind = plan_shortcut(walker, args, cin, cout, size, out_size, norm=not preact, how=how)
    post: Items = () if preact else (("act" + str(3 if kind == "bottleneck" else 2), Act(activation)),)
    walker.channels, walker.size = cout, out_size
    return Residual(
        kind=kind,
        in_channels=cin,
        out_channels=cout,
        stride=args.stride,
        in_size=size,
        out_size=out_size,
        pre=tuple(pre),
        body=tuple(body),
        shortcut=shortcut,
        shortcut_kind=shortcut_kind,
        shortcut_from_pre=preact and shortcut_kind == "projection",
        post=post,
        drop_path=walker.next_drop_path(),
        zero_init=(zero_init,) if shortcut_kind != "none" else None,
    )


def bottleneck_widths(walker: Walker, args: BlockArgs, knobs: BottleneckParams) -> tuple[int, int]:
    """(inner width, groups) of a bottleneck: torchvision's width x width_per_group / 64 x groups, or RegNet-style
    groups of `group_width` channels."""
    groups = knobs.groups or 1
    inner = int(args.width * (knobs.width_per_group / 64.0)) * groups
    if inner < 1:
        raise walker.problem(
            f"bottleneck inner width rounds to 0 (width {args.width} x width_per_group {knobs.width_per_group} / 64)",
            "width",
        )
    if knobs.group_width is not None:
        groups = group_count(
            walker, args, knobs.group_width, inner, f"width {args.width} x width_per_group {knobs.width_per_group} / 64"
        )
    return inner, groups


def group_count(walker: Walker, args: BlockArgs, group_width: int | None, inner: int, how: str) -> int:
    """inner / group_width, which must divide exactly."""
    group_width = group_width or inner
    if inner % group_width:
        field: tuple[str | int, ...] = (
            ("stages", args.stage_index, "group_width") if args.stage.group_width is not None else ("group_width",)
        )
        raise walker.problem_at(
            field,
            f"group width {group_width} does not divide the inner width {inner} ({how}) of stage "
            f"{args.stage_index + 1}'s blocks; "
            "choose a group width that divides it, or change the width",
        )
    return inner // group_width


def squeeze_excite(reduced: int, channels: int, size: Size2, activation: str = "relu") -> SqueezeExcite:
    """An SE unit gating `channels` maps of `size` through `reduced`: pool to 1x1, two 1x1 convs with bias and
    `activation` between them, a sigmoid gate (the module names are torchvision's and timm's)."""
    return SqueezeExcite(
        channels,
        size,
        (
            ("pool", AdaptivePool("avg", channels, size, (1, 1))),
            ("fc1", Conv(channels, reduced, 1, (1, 1), (1, 1), bias=True)),
            ("act", Act(activation)),
            ("fc2", Conv(reduced, channels, 1, (1, 1), (1, 1), bias=True)),
        ),
    )


def plan_shortcut(
    walker: Walker, args: BlockArgs, cin: int, cout: int, size: Size2, out_size: Size2, *, norm: bool, how: str = ""
) -> tuple[Sequence | ZeroPadShortcut | None, str]:
    """The shortcut of one block under its option (A, B, C) and `avg_down`; (op or None, kind)."""
    option, stride = getattr(args.knobs, "shortcut", "B"), args.stride
    same_shape = stride == 1 and cin == cout
    if option == "A":
        if cout < cin:
            raise walker.problem(
                f"shortcut option A pads channels with zeros and cannot reduce width from {cin} to {cout}{how}; "
                "use shortcut B or C",
                "width",
            )
        return (None, "identity") if same_shape else (ZeroPadShortcut(stride, cin, cout), "zero_pad")
    if option == "B" and same_shape:
        return None, "identity"
    items: list[tuple[str, Op]] = []
    if getattr(args.knobs, "avg_down", False):
        # ResNet-D: average-pool, then a stride-1 projection. In a dilated stage timm keeps a
        # 2x2 stride-1 pool over a zero-padded input ("same" padding), so the map keeps its size.
        if stride > 1:
            pooled = (pool_out(size[0], 2, stride, 0, True), pool_out(size[1], 2, stride, 0, True))
            pool: Op = AvgPool(2, stride, cin, size, pooled)
        elif args.dilation > 1:
            pooled, pool = size, AvgPool(2, 1, cin, size, size, pad=(0, 1, 0, 1))
        else:
            pooled, pool = size, Identity()
        items.append(("0", pool))
        conv = walker.conv(cin, cout, 1, pooled)
    else:
        conv = walker.conv(cin, cout, 1, size, stride=stride)
    items.append((str(len(items)), conv))
    if walker.has_norm and norm:
        items.append((str(len(items)), walker.norm(cout, conv.out_size)))
    if conv.out_size != out_size:
        raise walker.problem(f"the shortcut's output ({conv.out_size}) does not match the block's ({out_size})")
    return Sequence(tuple(items)), "projection"


BASIC = BlockKind(
    params=BasicParams,
    family="resnet",
    residual=True,
    plan_stage=plan_residual_stage(residual_block, reuse=True),
    tolerates=frozenset({"stride_in"}),
)
BOTTLENECK = BlockKind(
    params=BottleneckParams, family="resnet", residual=True, plan_stage=plan_residual_stage(residual_block, reuse=True)
)
PLAIN = BlockKind(
    params=PlainParams,
    family="resnet",
    residual=False,
    plan_stage=plan_residual_stage(residual_block, reuse=True),
    tolerates=frozenset({"shortcut", "stride_in", "avg_down"}),
)
