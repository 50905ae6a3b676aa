"""ResNet's blocks: basic (3x3, 3x3), bottleneck (1x1, 3x3, 1x1) and plain (basic without a shortcut).

Module names are torchvision's (`conv1`, `bn1`, ..., `downsample`), so its weights load;
pre-activation blocks (He et al. 2016) follow timm's PreAct naming (`bn1`/`act1` first).
"""

from __future__ import annotations

from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage, se_reduced_width
from archspec.plan.ops import (
    Act,
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
    kind = knobs.block
    cin, size = walker.channels, walker.size
    expansion = knobs.expansion or (4 if kind == "bottleneck" else 1)
    cout = args.width * expansion
    preact, activation = knobs.preact, knobs.activation
    pre: list[tuple[str, Op]] = []
    body: list[tuple[str, Op]] = []
    if preact:
        walker.norm_act(pre, "bn1", "act1", cin, size, activation)
        if not walker.has_norm:
            # With no norm before it, act1 would run in place on the block's own input.
            pre = [(name, Act(activation, inplace=False)) for name, _ in pre]
    norm_names = iter(["bn2", "bn3", "bn4"] if preact else ["bn1", "bn2", "bn3"])
    if kind == "bottleneck":
        inner, groups = bottleneck_widths(walker, args)
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
    if knobs.se is not None:
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
        shortcut_name="downsample",
        shortcut_first=False,
        shortcut_from_pre=preact and shortcut_kind == "projection",
        post=post,
        drop_path=walker.next_drop_path(),
        zero_init=(zero_init,) if shortcut_kind != "none" else None,
    )


def bottleneck_widths(walker: Walker, args: BlockArgs) -> tuple[int, int]:
    """(inner width, groups) of a bottleneck: torchvision's width x width_per_group / 64 x groups, or RegNet-style
    groups of `group_width` channels."""
    knobs = args.knobs
    groups = knobs.groups or 1
    inner = int(args.width * (knobs.width_per_group / 64.0)) * groups
    if inner < 1:
        raise walker.problem(
            f"bottleneck inner width rounds to 0 (width {args.width} x width_per_group {knobs.width_per_group} / 64)",
            "width",
        )
    if knobs.group_width is not None:
        groups = group_count(walker, args, inner, f"width {args.width} x width_per_group {knobs.width_per_group} / 64")
    return inner, groups


def group_count(walker: Walker, args: BlockArgs, inner: int, how: str) -> int:
    """inner / group_width, which must divide exactly."""
    group_width = args.knobs.group_width or inner
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


def squeeze_excite(reduced: int, channels: int, size: Size2) -> SqueezeExcite:
    """An SE unit gating `channels` through `reduced`; its two 1x1 convs act on a 1x1 map."""
    fc1 = Conv(channels, reduced, 1, (1, 1), (1, 1), bias=True)
    fc2 = Conv(reduced, channels, 1, (1, 1), (1, 1), bias=True)
    return SqueezeExcite(channels, reduced, size, fc1, fc2)


def plan_shortcut(
    walker: Walker, args: BlockArgs, cin: int, cout: int, size: Size2, out_size: Size2, *, norm: bool, how: str = ""
) -> tuple[Sequence | ZeroPadShortcut | None, str]:
    """The shortcut of one block under its option (A, B, C) and `avg_down`; (op or None, kind)."""
    option, stride = args.knobs.shortcut, args.stride
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
    if args.knobs.avg_down:
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


_SHAPED_BY = frozenset({"shortcut", "expansion", "avg_down", "se", "preact", "activation"})

BASIC = BlockKind(
    name="basic",
    family="resnet",
    summary="3x3, 3x3 with a shortcut (ResNet-18/34, the CIFAR nets)",
    knobs=_SHAPED_BY,
    tolerates=frozenset({"stride_in"}),
    residual=True,
    plan_stage=plan_residual_stage(residual_block),
)
BOTTLENECK = BlockKind(
    name="bottleneck",
    family="resnet",
    summary="1x1 reduce, 3x3, 1x1 restore with a shortcut (ResNet-50 and deeper, ResNeXt, wide ResNets)",
    knobs=_SHAPED_BY | {"groups", "group_width", "width_per_group", "stride_in"},
    tolerates=frozenset(),
    residual=True,
    plan_stage=plan_residual_stage(residual_block),
)
PLAIN = BlockKind(
    name="plain",
    family="resnet",
    summary="basic without the shortcut (the paper's plain baselines)",
    knobs=frozenset({"expansion", "se", "activation"}),
    tolerates=frozenset({"shortcut", "stride_in", "avg_down"}),
    residual=False,
    plan_stage=plan_residual_stage(residual_block),
)
