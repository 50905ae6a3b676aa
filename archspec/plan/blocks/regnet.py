"""RegNet's block (Radosavovic et al. 2020; torchvision's ResBottleneckBlock): a residual bottleneck of
1x1, grouped 3x3 (the stride), [squeeze-and-excitation], 1x1, with a projection where the shape changes.

The output width is the stage's width (no expansion); the inner width is width / bottleneck_ratio, split
into groups of `group_width` channels. Module names are torchvision's (`f.a`, `f.b`, `f.se`, `f.c`,
`proj`, `activation`), so its RegNet weights load.
"""

from __future__ import annotations

from archspec.lang.blocks import RegNetParams
from archspec.plan.blocks.base import BlockArgs, BlockKind, plan_residual_stage, se_reduced_width
from archspec.plan.blocks.residual import group_count, plan_shortcut, squeeze_excite
from archspec.plan.ops import Act, Items, Op, Residual, Sequence
from archspec.plan.walker import Walker


def regnet_block(walker: Walker, args: BlockArgs) -> Residual:
    knobs = args.knobs
    assert isinstance(knobs, RegNetParams)
    cin, size = walker.channels, walker.size
    cout = args.width
    ratio = knobs.bottleneck_ratio
    inner = round(cout / ratio)
    if inner < 1:
        raise walker.problem(f"the inner width rounds to 0 (width {cout} / bottleneck_ratio {ratio:g})", "width")
    if knobs.group_width is not None:
        groups = group_count(walker, args, knobs.group_width, inner, f"width {cout} / bottleneck_ratio {ratio:g}")
    else:
        groups = knobs.groups or 1
        if inner % groups:
            field = ("stages", args.stage_index, "groups") if args.stage.groups is not None else ("groups",)
            raise walker.problem_at(
                field,
                f"{groups} groups do not divide the inner width {inner} (width {cout} / bottleneck_ratio {ratio:g})",
            )
    s1, s3 = (args.stride, 1) if knobs.stride_in == "1x1" else (1, args.stride)
    activation = knobs.activation
    a = walker.conv(cin, inner, 1, size, stride=s1)
    d = args.first_dilation
    b = walker.conv(inner, inner, 3, a.out_size, stride=s3, padding=d, dilation=d, groups=groups)
    c = walker.conv(inner, cout, 1, b.out_size)
    f: list[tuple[str, Op]] = [("a", walker.conv_norm_act(a, activation)), ("b", walker.conv_norm_act(b, activation))]
    if knobs.se:
        f.append(("se", squeeze_excite(se_reduced_width(knobs.se, cin, cout), inner, b.out_size)))
    last = walker.conv_norm_act(c, None)
    f.append(("c", last))
    shortcut, shortcut_kind = plan_shortcut(walker, args, cin, cout, size, c.out_size, norm=True)
    # zero_init_residual: the norm after c, or c itself where there are no norms.
    zero_init = ("f", "c", last.items[-1][0])
    body: Items = (("f", Sequence(tuple(f))),)
    walker.channels, walker.size = cout, c.out_size
    return Residual(
        kind="regnet",
        in_channels=cin,
        out_channels=cout,
        stride=args.stride,
        in_size=size,
        out_size=c.out_size,
        body=body,
        shortcut=shortcut,
        shortcut_kind=shortcut_kind,
        shortcut_name="proj",
        shortcut_first=True,
        post=(("activation", Act(activation)),),
        drop_path=walker.next_drop_path(),
        zero_init=zero_init,
    )


REGNET = BlockKind(
    params=RegNetParams, family="regnet", residual=True, plan_stage=plan_residual_stage(regnet_block, reuse=True)
)
