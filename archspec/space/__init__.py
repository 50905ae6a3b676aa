"""Design spaces: specs whose fields may be distributions, sampled under constraints, and specs scaled to a budget.

- `load`: a space file -> `Space` (its distributions found along the spec's schema, checked and located);
- `distributions`, `constraints`: what a space may write instead of a value, and the bounds on what a draw costs;
- `draw`, `sample`, `write`: one draw, a sampling run (validate, plan and count each draw), and its files;
- `fit`: a spec's depths and widths scaled to a FLOPs or parameter target;
- `plot`: sample files drawn as the design-space papers draw them (matplotlib, imported when drawing).

Nothing here imports torch.
"""
