"""Validated spec -> resolved plan: every layer with its widths, stride and spatial size.

This is the only place that does width and stride arithmetic. The builder
(`archspec.nn.builder`) turns each op below into a torch module and the counter
(`archspec.counting.analytic`) sums the same ops, so the two can never disagree about
what the network is. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from archspec.lang.schema import Spec

Size2 = tuple[int, int]


class PlanProblem(Exception):
    """A spec that validates field by field but describes an impossible network."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


# --- ops: one record per module the builder makes -------------------------------------------


@dataclass(frozen=True)
class Conv:
    in_channels: int
    out_channels: int
    kernel: int
    in_size: Size2
    out_size: Size2
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = False


@dataclass(frozen=True)
class Norm:
    kind: str  # "batch" | "group"
    channels: int
    size: Size2
    groups: int = 0


@dataclass(frozen=True)
class Act:
    kind: str


@dataclass(frozen=True)
class MaxPool:
    kernel: int
    stride: int
    padding: int
    channels: int
    in_size: Size2
    out_size: Size2


@dataclass(frozen=True)
class AvgPool:
    """ResNet-D's shortcut pool: 2x2, ceil mode, padding excluded from the mean."""

    kernel: int
    stride: int
    channels: int
    in_size: Size2
    out_size: Size2


@dataclass(frozen=True)
class AdaptivePool:
    kind: str  # "avg" | "max"
    channels: int
    in_size: Size2
    out_size: Size2


@dataclass(frozen=True)
class Identity:
    pass


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class Dropout:
    p: float


@dataclass(frozen=True)
class ZeroPadShortcut:
    """Option A: subsample by the stride, append zero channels up to the output width."""

    stride: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class SqueezeExcite:
    channels: int
    reduced: int
    size: Size2
    fc1: Conv
    fc2: Conv


@dataclass(frozen=True)
class Sequence:
    items: tuple[tuple[str, "Op"], ...]


@dataclass(frozen=True)
class Residual:
    """One block: `pre` (pre-activation), `body` (the residual function F), shortcut, `post` after the add."""

    kind: str
    in_channels: int
    out_channels: int
    stride: int
    in_size: Size2
    out_size: Size2
    pre: tuple[tuple[str, "Op"], ...]
    body: tuple[tuple[str, "Op"], ...]
    shortcut: Union[None, Sequence, ZeroPadShortcut]
    shortcut_kind: str  # "identity" | "zero_pad" | "projection" | "none"
    shortcut_from_pre: bool
    post: tuple[tuple[str, "Op"], ...]
    drop_path: float
    last_norm: str | None


Op = Union[Conv, Norm, Act, MaxPool, AvgPool, AdaptivePool, Identity, Flatten, Linear, Dropout, ZeroPadShortcut, SqueezeExcite, Sequence, Residual]


@dataclass(frozen=True)
class Section:
    """A row of the report: the stem, one stage, or the head, with the ops that belong to it."""

    name: str
    ops: tuple[tuple[str, Op], ...]
    blocks: int = 0
    block: str = ""
    shortcut: str = ""
    in_channels: int = 0
    out_channels: int = 0
    stride: int = 1
    out_size: Size2 = (0, 0)


@dataclass(frozen=True)
class Plan:
    """A network resolved down to its layers; `children` are the top-level modules, in order."""

    spec: Spec
    family: str  # "resnet" | "vgg"
    input_channels: int
    input_size: Size2
    children: tuple[tuple[str, Op], ...]
    sections: tuple[Section, ...]
    taps: tuple[tuple[str, ...], ...] | None
    output_shape: Union[tuple[int, ...], list[tuple[int, ...]]] = field(default=())


# --- arithmetic ------------------------------------------------------------------------------


def as_size(size) -> Size2:
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def conv_out(n: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(n: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Pooling output length, torch's rule: in ceil mode the last window must start inside the input."""
    out = (n + 2 * padding - (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of `divisor`, at least `divisor` (the SE convention)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class _Builder:
    """Walks the spec once, tracking channels, spatial size, total stride and dilation."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.channels = spec.input.channels
        self.size = as_size(spec.input.size)
        self.total_stride = 1
        self.dilation = 1
        self.path: tuple = ("input", "size")
        self.has_norm = spec.norm != "none"
        self.block_index = 0
        self.total_blocks = sum(s.depth for s in spec.stages if (s.block or spec.block) != "vgg")

    # Small op makers; each checks what it can against the current place in the spec.

    def _check_size(self, size: Size2, what: str) -> Size2:
        if min(size) < 1:
            h, w = as_size(self.spec.input.size)
            raise PlanProblem(
                self.path,
                f"the feature map shrinks to {size[0]}x{size[1]} at {what} for a {h}x{w} input; "
                "use a larger input.size or fewer stride-2 stages",
            )
        return size

    def conv(self, cin, cout, kernel, size, stride=1, padding=0, dilation=1, groups=1, bias=None) -> Conv:
        out = (conv_out(size[0], kernel, stride, padding, dilation), conv_out(size[1], kernel, stride, padding, dilation))
        self._check_size(out, f"a {kernel}x{kernel} conv")
        return Conv(cin, cout, kernel, size, out, stride, padding, dilation, groups, (not self.has_norm) if bias is None else bias)

    def norm(self, channels: int, size: Size2) -> Norm:
        if self.spec.norm == "group":
            if channels % self.spec.norm_groups:
                raise PlanProblem(
                    ("norm_groups",) if "norm_groups" in self.spec.model_fields_set else ("norm",),
                    f"group norm with {self.spec.norm_groups} groups needs channel counts divisible by it; {format_path(self.path)} has {channels} channels",
                )
            return Norm("group", channels, size, self.spec.norm_groups)
        return Norm("batch", channels, size)

    def norm_act(self, items: list, name_norm: str | None, name_act: str | None, channels: int, size: Size2) -> None:
        if self.has_norm and name_norm:
            items.append((name_norm, self.norm(channels, size)))
        if name_act:
            items.append((name_act, Act(self.spec.activation)))

    def max_pool(self, kernel, stride, padding, size) -> MaxPool:
        out = (pool_out(size[0], kernel, stride, padding, False), pool_out(size[1], kernel, stride, padding, False))
        self._check_size(out, f"a {kernel}x{kernel} max pool")
        return MaxPool(kernel, stride, padding, self.channels, size, out)

    # The three parts of a network.

    def stem(self) -> list:
        spec, stem = self.spec, self.spec.stem
        self.path = ("stem",)
        items: list = []
        if stem.type == "none":
            return items
        width = stem.width or (16 if stem.type == "cifar" else 64)
        size, cin = self.size, self.channels
        if stem.type == "imagenet":
            first = self.conv(cin, width, 7, size, stride=2, padding=3)
            items.append(("conv1", first))
        elif stem.type == "cifar":
            first = self.conv(cin, width, 3, size, stride=1, padding=1)
            items.append(("conv1", first))
        else:
            inner = stem.inner_width or max(1, width // 2)
            a = self.conv(cin, inner, 3, size, stride=2, padding=1)
            b = self.conv(inner, inner, 3, a.out_size, padding=1)
            c = self.conv(inner, width, 3, b.out_size, padding=1)
            deep: list = [("0", a)]
            self.norm_act(deep, "1", "2", inner, a.out_size)
            deep.append((str(len(deep)), b))
            self.norm_act(deep, str(len(deep)), str(len(deep) + 1), inner, b.out_size)
            deep.append((str(len(deep)), c))
            first = c
            items.append(("conv1", Sequence(tuple(deep))))
        self.channels, self.size = width, first.out_size
        self.total_stride *= first.stride if stem.type != "deep" else 2
        if not spec.preact:
            # A pre-activation network's first block normalizes its input itself.
            self.norm_act(items, "bn1", "act", width, self.size)
        if stem.pool if stem.pool is not None else stem.type != "cifar":
            pool = self.max_pool(3, 2, 1, self.size)
            items.append(("maxpool", pool))
            self.size = pool.out_size
            self.total_stride *= 2
        return items

    def stage_stride(self, index: int, block: str) -> int:
        stage = self.spec.stages[index]
        if stage.stride is not None:
            return stage.stride
        return 2 if block == "vgg" or index > 0 else 1

    def residual_stage(self, index: int, block: str, option: str) -> tuple[Sequence, int, int]:
        stage = self.spec.stages[index]
        stride = self.stage_stride(index, block)
        first_dilation = self.dilation
        limit = self.spec.output_stride
        if limit is not None and self.total_stride * stride > limit:
            # torchvision's replace_stride_with_dilation: the stage keeps its resolution and
            # dilates instead; its first block still uses the previous dilation.
            self.dilation *= stride
            stride = 1
        self.total_stride *= stride
        blocks = []
        for j in range(stage.depth):
            self.path = ("stages", index)
            block_plan = self.residual_block(block, option, stage.width, stride if j == 0 else 1, first_dilation if j == 0 else self.dilation)
            blocks.append((str(j), block_plan))
        return Sequence(tuple(blocks)), stride, self.dilation

    def residual_block(self, block: str, option: str, width: int, stride: int, dilation: int) -> Residual:
        spec = self.spec
        cin, size = self.channels, self.size
        expansion = spec.expansion or (4 if block == "bottleneck" else 1)
        cout = width * expansion
        preact = spec.preact
        pre: list = []
        body: list = []
        if preact:
            self.norm_act(pre, "bn1", "act1", cin, size)
        norm_names = iter(["bn2", "bn3", "bn4"] if preact else ["bn1", "bn2", "bn3"])
        if block == "bottleneck":
            inner = int(width * (spec.width_per_group / 64.0)) * spec.groups
            if inner < 1:
                raise PlanProblem(self.path + ("width",), f"bottleneck inner width rounds to 0 (width {width} x width_per_group {spec.width_per_group} / 64)")
            s1, s3 = (stride, 1) if spec.stride_in == "1x1" else (1, stride)
            c1 = self.conv(cin, inner, 1, size, stride=s1)
            body.append(("conv1", c1))
            self.norm_act(body, next(norm_names), "act2" if preact else "act1", inner, c1.out_size)
            c2 = self.conv(inner, inner, 3, c1.out_size, stride=s3, padding=dilation, dilation=dilation, groups=spec.groups)
            body.append(("conv2", c2))
            self.norm_act(body, next(norm_names), "act3" if preact else "act2", inner, c2.out_size)
            last = self.conv(inner, cout, 1, c2.out_size)
            body.append(("conv3", last))
        else:
            c1 = self.conv(cin, cout, 3, size, stride=stride, padding=dilation, dilation=dilation)
            body.append(("conv1", c1))
            self.norm_act(body, next(norm_names), "act2" if preact else "act1", cout, c1.out_size)
            last = self.conv(cout, cout, 3, c1.out_size, padding=dilation, dilation=dilation)
            body.append(("conv2", last))
        out_size = last.out_size
        last_norm = None
        if not preact and self.has_norm:
            last_norm = next(norm_names)
            body.append((last_norm, self.norm(cout, out_size)))
        if spec.se is not None:
            reduced = make_divisible(cout / spec.se.reduction, spec.se.divisor)
            body.append(
                ("se", SqueezeExcite(cout, reduced, out_size, Conv(cout, reduced, 1, (1, 1), (1, 1), bias=True), Conv(reduced, cout, 1, (1, 1), (1, 1), bias=True)))
            )
        shortcut, kind = self.shortcut(block, option, cin, cout, stride, size, out_size, f" (width {width} x expansion {expansion})" if expansion > 1 else "")
        post = () if preact else (("act" + str(3 if block == "bottleneck" else 2), Act(spec.activation)),)
        rate = spec.drop_path * self.block_index / max(1, self.total_blocks - 1)
        self.block_index += 1
        self.channels, self.size = cout, out_size
        return Residual(block, cin, cout, stride, size, out_size, tuple(pre), tuple(body), shortcut, kind, preact and kind == "projection", post, rate, last_norm)

    def shortcut(self, block, option, cin, cout, stride, size, out_size, how=""):
        if block == "plain":
            return None, "none"
        same_shape = stride == 1 and cin == cout
        if option == "A":
            if cout < cin:
                raise PlanProblem(
                    self.path + ("width",),
                    f"shortcut option A pads channels with zeros and cannot reduce width from {cin} to {cout}{how}; use shortcut B or C",
                )
            return (None, "identity") if same_shape else (ZeroPadShortcut(stride, cin, cout), "zero_pad")
        if option == "B" and same_shape:
            return None, "identity"
        items: list = []
        if self.spec.avg_down:
            if stride > 1:
                pooled = (pool_out(size[0], 2, stride, 0, True), pool_out(size[1], 2, stride, 0, True))
                items.append(("0", AvgPool(2, stride, cin, size, pooled)))
            else:
                items.append(("0", Identity()))
            conv = self.conv(cin, cout, 1, items[0][1].out_size if stride > 1 else size)
        else:
            conv = self.conv(cin, cout, 1, size, stride=stride)
        items.append((str(len(items)), conv))
        if self.has_norm and not self.spec.preact:
            items.append((str(len(items)), self.norm(cout, conv.out_size)))
        if conv.out_size != out_size:
            raise PlanProblem(self.path, f"the shortcut's output ({conv.out_size}) does not match the block's ({out_size})")
        return Sequence(tuple(items)), "projection"

    def vgg_stage(self, index: int) -> tuple[list, int]:
        stage = self.spec.stages[index]
        self.path = ("stages", index)
        stride = self.stage_stride(index, "vgg")
        items: list = []
        for _ in range(stage.depth):
            conv = self.conv(self.channels, stage.width, 3, self.size, padding=1, bias=True)
            items.append(("conv", conv))
            self.channels, self.size = stage.width, conv.out_size
            self.norm_act(items, "norm", "act", self.channels, self.size)
        if stride == 2:
            pool = self.max_pool(2, 2, 0, self.size)
            items.append(("pool", pool))
            self.size = pool.out_size
        self.total_stride *= stride
        return items, stride

    def head(self, family: str) -> list:
        spec, head = self.spec, self.spec.head
        self.path = ("head",)
        items: list = []
        if spec.preact:
            self.norm_act(items, "final_norm", "final_act", self.channels, self.size)
        if head.pool != "none":
            out = as_size(head.pool_size)
            items.append(("avgpool" if head.pool == "avg" else "pool", AdaptivePool(head.pool, self.channels, self.size, out)))
            self.size = out
        items.append(("flatten", Flatten()))
        features = self.channels * self.size[0] * self.size[1]
        layers: list = []
        for width in head.hidden:
            layers += [(str(len(layers)), Linear(features, width)), (str(len(layers) + 1), Act(spec.activation)), (str(len(layers) + 2), Dropout(head.dropout))]
            features = width
        if not head.hidden and head.dropout > 0:
            layers.append((str(len(layers)), Dropout(head.dropout)))
        layers.append((str(len(layers)), Linear(features, head.num_classes)))
        if family == "resnet" and not head.hidden:
            # torchvision's ResNet names its single classifier layer `fc`.
            items += [("dropout", op) if isinstance(op, Dropout) else ("fc", op) for _, op in layers]
        else:
            items.append(("classifier", Sequence(tuple(layers))))
        return items


def format_path(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _flatten(items: list, start: int) -> list:
    """Nested sequences as one numbered list (VGG's `features`)."""
    flat: list = []
    for _, op in items:
        if isinstance(op, Sequence):
            flat += _flatten(list(op.items), start + len(flat))
        else:
            flat.append((str(start + len(flat)), op))
    return flat


def make_plan(spec: Spec) -> Plan:
    """Resolve a validated spec into its plan; raise PlanProblem for an impossible network."""
    b = _Builder(spec)
    kinds = [stage.block or spec.block for stage in spec.stages]
    family = "vgg" if "vgg" in kinds else "resnet"
    if family == "vgg" and spec.output_stride is not None:
        raise PlanProblem(("output_stride",), "output_stride (dilation) applies to residual and plain stages, not vgg")
    stem = b.stem()
    sections = [Section("stem", tuple(stem), in_channels=spec.input.channels, out_channels=b.channels, stride=b.total_stride, out_size=b.size)] if stem else []
    stem_tap = None
    if stem:
        stem_tap = ("features", str(len(_flatten(stem, 0)) - 1)) if family == "vgg" else (stem[-1][0],)
    stage_taps = []
    children: list = []
    features: list = _flatten(stem, 0) if family == "vgg" else []
    if family == "resnet":
        children += stem
    features_only = spec.head.features is not None
    for index in spec.head.features or ():
        if index > len(spec.stages):
            raise PlanProblem(("head", "features"), f"stage {index} does not exist: the network has stages 1 to {len(spec.stages)} (0 is the stem)")
    # A features-only backbone ends at the last stage it returns (as timm's features_only does).
    kept = max(spec.head.features) if features_only else len(spec.stages)
    for i, stage in enumerate(spec.stages[:kept]):
        block = kinds[i]
        option = stage.shortcut or spec.shortcut
        cin = b.channels
        if family == "vgg":
            items, stride = b.vgg_stage(i)
            flat = _flatten(items, len(features))
            features += flat
            ops = tuple(flat)
            stage_taps.append(("features", flat[-1][0]))
        else:
            seq, stride, _ = b.residual_stage(i, block, option)
            name = f"layer{i + 1}"
            children.append((name, seq))
            ops = ((name, seq),)
            stage_taps.append((name,))
        sections.append(
            Section(f"stage{i + 1}", ops, stage.depth, block, "-" if block in ("plain", "vgg") else option, cin, b.channels, stride, b.size)
        )
    if family == "vgg":
        children.append(("features", Sequence(tuple(features))))
    taps = None
    if spec.head.features is not None:
        taps = []
        for index in spec.head.features:
            if index == 0 and stem_tap is None:
                raise PlanProblem(("head", "features"), "feature 0 is the stem's output, but this spec has no stem")
            taps.append(stem_tap if index == 0 else stage_taps[index - 1])
        output = []
        for index in spec.head.features:
            section = sections[index - (0 if stem else 1)] if index else sections[0]
            output.append((section.out_channels, *section.out_size))
        return Plan(spec, family, spec.input.channels, as_size(spec.input.size), tuple(children), tuple(sections), tuple(taps), output)
    head = b.head(family)
    children += head
    sections.append(Section("head", tuple(head), in_channels=b.channels, out_channels=spec.head.num_classes))
    return Plan(spec, family, spec.input.channels, as_size(spec.input.size), tuple(children), tuple(sections), None, (spec.head.num_classes,))
