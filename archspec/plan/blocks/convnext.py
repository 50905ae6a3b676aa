"""ConvNeXt's block (Liu et al. 2022; torchvision's CNBlock): depthwise kxk conv, layer norm, a per-pixel MLP
(1x1 up by the expansion, GELU, 1x1 down) and a learned per-channel scale, added to the block's input.

A stage whose input differs from its blocks in width or resolution opens with torchvision's downsampling
layer (layer norm, then a conv with kernel and stride equal to the stage's stride). Module names are
torchvision's (`block.0` ... `block.5`, `layer_scale`), so its weights load.

The kind's knobs also describe the networks between ResNet-50 and ConvNeXt that the paper walks through
(its Section 2, specs/roadmap/convnext/): the depthwise conv in the middle of an inverted bottleneck, batch
norm, a norm and an activation after every conv (and an activation after the sum), and ResNet's way of
changing shape (the stage's first block strides and projects its shortcut). Where the depthwise conv comes
first and its norm is the block's only one, the 1x1 convs are per-pixel linear layers on a channels-last map,
as torchvision's; elsewhere they are 1x1 convs. A conv that a batch norm follows has no bias (the norm's
shift makes one redundant, as in ResNet); every other conv and linear layer has one, as in ConvNeXt.
"""

from __future__ import annotations

from archspec.lang.blocks import BlockParams, ConvNeXtParams
from archspec.lang.schema import Stage
from archspec.plan.blocks.base import BlockKind, StagePlan, written_at
from archspec.plan.ops import (
    Act,
    Conv,
    LayerNorm,
    LayerScale,
    Norm,
    Op,
    Permute,
    PixelLinear,
    Residual,
    Sequence,
    Size2,
)
from archspec.plan.walker import Walker, numbered

CHANNELS_LAST, CHANNELS_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


def _norm(walker: Walker, params: ConvNeXtParams, channels: int, size: Size2, *, channels_last: bool = False) -> Op:
    walker.add_params(2 * channels)
    if params.norm == "batch":
        return Norm("batch", channels, size)
    return LayerNorm(channels, size, channels_last=channels_last)


def _conv(
    walker: Walker,
    params: ConvNeXtParams,
    cin: int,
    cout: int,
    kernel: int,
    size: Size2,
    *,
    stride: int = 1,
    groups: int = 1,
    normed: bool | None = None,
) -> tuple[Conv, bool]:
    """A conv of the block and whether a norm follows it (the depthwise conv's always; the others' with
    `norms: each`); no bias where that norm is a batch norm."""
    if normed is None:
        normed = params.norms == "each" or groups > 1
    bias = not (normed and params.norm == "batch")
    conv = walker.conv(cin, cout, kernel, size, stride=stride, padding=kernel // 2, groups=groups, bias=bias)
    walker.add_params(cout if bias else 0)
    return conv, normed


def convnext_block(walker: Walker, params: ConvNeXtParams, width: int | None = None, stride: int = 1) -> Residual:
    """One block at the walker's place, to `width` channels (default: its input's) with `stride` (taken by the
    depthwise conv; a block that changes shape then projects its shortcut)."""
    cin, size = walker.channels, walker.size
    cout = width or cin
    inner = cout * (params.expansion or 4)
    each_act = params.activations == "each"
    layers: list[Op] = []
    if params.depthwise == "first" and params.norms == "one":
        # The depthwise conv and its norm, then a per-pixel MLP on a channels-last map (torchvision's CNBlock).
        dw, _ = _conv(walker, params, cin, cin, params.kernel, size, stride=stride, groups=cin)
        layers.append(dw)
        if params.norm == "batch":
            layers += [_norm(walker, params, cin, dw.out_size), Permute(CHANNELS_LAST)]
        else:
            layers += [Permute(CHANNELS_LAST), _norm(walker, params, cin, dw.out_size, channels_last=True)]
        if each_act:
            layers.append(Act(params.activation))
        walker.add_params(cin * inner + inner + inner * cout + cout)
        layers += [
            PixelLinear(cin, inner, dw.out_size),
            Act(params.activation),
            PixelLinear(inner, cout, dw.out_size),
            Permute(CHANNELS_FIRST),
        ]
        last = len(layers) - 2  # the 1x1 down: no norm follows it
        out_size = dw.out_size
    else:
        # Channels first: each conv with its norm (`norms: each`, or the depthwise conv's) and its activation.
        if params.depthwise == "first":
            convs = [(cin, cin, params.kernel, stride, cin), (cin, inner, 1, 1, 1), (inner, cout, 1, 1, 1)]
        else:
            convs = [(cin, inner, 1, 1, 1), (inner, inner, params.kernel, stride, inner), (inner, cout, 1, 1, 1)]
        up = 1 if params.depthwise == "first" else 0  # the conv that expands, which `activations: one` follows
        out_size = size
        for index, (a, b, kernel, s, groups) in enumerate(convs):
            conv, normed = _conv(walker, params, a, b, kernel, out_size, stride=s, groups=groups)
            out_size = conv.out_size
            layers.append(conv)
            if normed:
                layers.append(_norm(walker, params, b, out_size))
            if index < 2 if each_act else index == up:
                layers.append(Act(params.activation))
        last = len(layers) - 1  # the 1x1 down, or the norm that follows it
    body: list[tuple[str, Op]] = [("block", Sequence(numbered(layers)))]
    if params.layer_scale is not None:
        walker.add_params(cout)
        body.append(("layer_scale", LayerScale(cout, out_size, params.layer_scale)))
    shortcut: Sequence | None = None
    if stride > 1 or cin != cout:
        # ResNet's projection shortcut: a 1x1 conv with the block's stride, and the block's norm.
        project, _ = _conv(walker, params, cin, cout, 1, size, stride=stride, groups=1, normed=True)
        shortcut = Sequence((("0", project), ("1", _norm(walker, params, cout, project.out_size))))
    walker.channels, walker.size = cout, out_size
    return Residual(
        kind="convnext",
        in_channels=cin,
        out_channels=cout,
        stride=stride,
        in_size=size,
        out_size=out_size,
        body=tuple(body),
        shortcut=shortcut,
        shortcut_kind="projection" if shortcut is not None else "identity",
        post=(("act", Act(params.activation)),) if each_act else (),
        drop_path=walker.next_drop_path(),
        zero_init=("block", str(last)),
    )


def _written_at(walker: Walker, index: int, stage: Stage, knobs: tuple[str, ...]) -> tuple[str | int, ...]:
    """Where the first of `knobs` is written (`written_at`), else the `block:` that chose the kind."""
    where = written_at(walker, stage, index, ConvNeXtParams, knobs)
    if where is not None:
        return where
    return ("stages", index, "block") if stage.block is not None else ("block",)


def convnext_stage(walker: Walker, index: int, stage: Stage, params: BlockParams, stride: int) -> StagePlan:
    assert isinstance(params, ConvNeXtParams)
    walker.path = ("stages", index)
    limit = walker.spec.output_stride
    if limit is not None and walker.total_stride * stride > limit:
        raise walker.problem_at(
            ("output_stride",),
            f"convnext stages keep their stride (they have no dilated form); stage {index + 1} would take the "
            f"network's stride past output_stride {limit}",
        )
    if params.downsample == "layer" and params.norm == "batch":
        raise walker.problem_at(
            _written_at(walker, index, stage, ("downsample", "norm")),
            "a downsampling layer of its own normalizes with layer norm, as ConvNeXt's; blocks with norm: batch "
            "change shape ResNet's way (downsample: block)",
        )
    transition: Op | None = None
    first_stride = stride
    if params.downsample == "layer" and (stride > 1 or walker.channels != stage.width):
        # torchvision's downsampling layer: layer norm, then a stride x stride conv with stride `stride`.
        cin, size = walker.channels, walker.size
        walker.add_params(2 * cin)
        conv = walker.conv(cin, stage.width, stride, size, stride=stride, bias=True)
        transition = Sequence((("0", LayerNorm(cin, size)), ("1", conv)))
        walker.channels, walker.size = stage.width, conv.out_size
        first_stride = 1
    walker.total_stride *= stride
    blocks: list[Residual] = []
    added = 0  # the parameters the last planned block counted
    for j in range(stage.depth):
        if j > 1 and walker.spec.drop_path == 0:
            # Without a growing drop-path rate a block after the first two is the one before: planned once, reused.
            walker.add_params(added)
            walker.next_drop_path()
            blocks.append(blocks[-1])
            continue
        before = walker.params
        blocks.append(convnext_block(walker, params, stage.width, first_stride if j == 0 else 1))
        added = walker.params - before
    return StagePlan(tuple(blocks), stride, transition)


CONVNEXT = BlockKind(
    params=ConvNeXtParams,
    family="convnext",
    residual=True,
    plan_stage=convnext_stage,
    joins=frozenset({"resnet"}),
    width_quantum=lambda params: None,
    # ResNet's way of changing shape has no modules between blocks: a network of such stages is laid out as a
    # ResNet (layer1..N, fc; no layer norm before the classifier), as the paper's steps before the last are.
    family_of=lambda params: "resnet" if getattr(params, "downsample", "layer") == "block" else "convnext",
)
