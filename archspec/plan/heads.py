"""The head: what follows the last stage (pooling, fully connected layers), under the layout's names."""

from __future__ import annotations

from archspec.plan.ops import Act, AdaptivePool, Dropout, Flatten, LayerNorm, Linear, Op, Sequence
from archspec.plan.shapes import as_size
from archspec.plan.walker import Walker


def plan_head_conv(walker: Walker) -> list[tuple[str, Op]]:
    """The head's 1x1 conv, norm and activation before the pool (MobileNetV2, EfficientNet); [] without one."""
    width = walker.spec.head.conv
    if width is None:
        return []
    walker.path = ("head", "conv")
    conv = walker.conv(walker.channels, width, 1, walker.size)
    walker.channels = width
    return [("conv", walker.conv_norm_act(conv, walker.spec.activation))]


def plan_head(
    walker: Walker, *, preact_last: bool, single_fc_name: str | None, norm: bool = False
) -> list[tuple[str, Op]]:
    """Pool, flatten and the fully connected layers.

    A pre-activation last stage leaves its sum un-normalized, so the head starts with a norm
    and an activation. `single_fc_name` names a lone classifier layer (torchvision's ResNet and
    RegNet call it `fc`); otherwise, and whenever there are hidden layers, the layers form a
    `classifier` sequence (VGG). `norm` opens that sequence with a layer norm over the pooled features
    (ConvNeXt's `classifier.0`; the layers after it are numbered from 2, where torchvision flattens).
    """
    spec, head = walker.spec, walker.spec.head
    walker.path = ("head",)
    items: list[tuple[str, Op]] = []
    if preact_last:
        walker.norm_act(items, "final_norm", "final_act", walker.channels, walker.size, spec.activation)
    if head.pool != "none":
        out = as_size(head.pool_size)
        items.append(
            ("avgpool" if head.pool == "avg" else "pool", AdaptivePool(head.pool, walker.channels, walker.size, out))
        )
        walker.size = out
    items.append(("flatten", Flatten()))
    features = pooled = walker.channels * walker.size[0] * walker.size[1]
    layers: list[Op] = []
    for width in head.hidden:
        walker.add_params(features * width)
        layers += [Linear(features, width), Act(spec.activation), Dropout(head.dropout)]
        features = width
    if not head.hidden and head.dropout > 0:
        layers.append(Dropout(head.dropout))
    walker.add_params(features * head.num_classes)
    layers.append(Linear(features, head.num_classes))
    if norm:
        walker.add_params(2 * pooled)
        classifier = (("0", LayerNorm(pooled, (1, 1), channels_last=True)),)
        items.append(("classifier", Sequence(classifier + tuple((str(i), op) for i, op in enumerate(layers, 2)))))
    elif single_fc_name is not None and not head.hidden:
        items += [("dropout", op) if isinstance(op, Dropout) else (single_fc_name, op) for op in layers]
    else:
        items.append(("classifier", Sequence(tuple((str(i), op) for i, op in enumerate(layers)))))
    return items
