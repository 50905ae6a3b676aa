"""A sample's folder: one plain spec per sample, and samples.csv and samples.json listing them all.

Every file goes through the one output policy (`archspec.files.atomic_write`); the folder must be
new or empty unless --force, and then files of the same names are replaced (no others are touched).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import yaml

from archspec.errors import Mark, Problem, SpecError, shorten
from archspec.files import StagedFolder
from archspec.report.render import to_json
from archspec.space import samplesfile
from archspec.space.constraints import QUANTITIES
from archspec.space.draw import draw
from archspec.space.emit import plain_yaml
from archspec.space.results import SampleRecord, SampleRun
from archspec.space.template import Space

CSV_NAME = "samples.csv"
JSON_NAME = "samples.json"
# Keys a spec written here leaves out: the sample has its own name and description, and no parent.
_OWN = ("name", "description", "extends")
_CSV_HEADERS = {"depth": "layers"}


def check_folder(out: Path, *, force: bool) -> None:
    """Refuse an --out that is a file, or a folder that holds anything (unless `force`), before any work."""
    problem = _folder_problem(out, force)
    if problem is not None:
        raise SpecError(Problem(Mark(shorten(str(out), 200)), "--out", problem))


def _folder_problem(out: Path, force: bool) -> str | None:
    try:
        if out.is_dir():
            if not force and any(out.iterdir()):
                return (
                    "the folder is not empty; pass --force to write the samples into it "
                    "(files of the same names are replaced)"
                )
            return None
        if out.exists() or out.is_symlink():
            return "is a file, not a folder"
    except OSError as exc:
        return f"cannot use this path: {exc.strerror or exc}"
    if not out.parent.is_dir():
        return f"folder {shorten(str(out.parent), 200)!r} does not exist"
    return None


def spec_text(space: Space, seed: int, record: SampleRecord, *, dumper: type[Any] | None = None) -> str:
    """The YAML of one sampled spec (drawn with `seed`): a plain spec, with every drawn value in place."""
    data = draw(space, seed, record.draw).data
    return render_spec(space, seed, record.draw, record.name, data, dumper=dumper)


def render_spec(
    space: Space, seed: int, index: int, name: str, data: dict[str, Any], *, dumper: type[Any] | None = None
) -> str:
    """The YAML of draw `index` (its `data`) as the spec `name`, with libyaml's emitter where PyYAML has it
    (the same text as PyYAML's own, which `dumper=PlainDumper` asks for). Without a `dumper`, the text is
    written directly where `emit.plain_yaml` knows it (a spec's usual shapes), by libyaml otherwise."""
    description = f"Draw {index} of the space {space.name} ({space.source}), seed {seed}; written by archspec sample."
    body = {"name": name, "description": description, **{k: v for k, v in data.items() if k not in _OWN}}
    if dumper is None:
        text = plain_yaml(body)
        if text is not None:
            return text
    return yaml.dump(
        body, Dumper=dumper or _DUMPER, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True
    )


class PlainDumper(yaml.SafeDumper):
    """Writes every value out: stages drawn from one template share their fixed parts, which would
    otherwise come out as YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_STR, _INT, _BOOL, _NULL = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "bool", "null"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _PlainNodes:
    """The node graph PyYAML's SafeRepresenter makes of a spec (mappings in their own order, lists, text,
    integers, booleans, null), made without its per-value dispatch, which costs most of a spec file once the
    emitter is libyaml's. Any other value (a float, a subclass) goes through the representer itself. As in
    PlainDumper, nothing is shared: every value is written out, never aliased."""

    # What the resolver answers for a scalar's text: the emitter asks twice per scalar (may it be written plain,
    # may it go untagged), and a spec's keys and numbers repeat from one file to the next. Long texts (a sample's
    # description) are not kept.
    _resolved: ClassVar[dict[tuple[Any, str, Any], str]] = {}

    def represent(self, data: Any) -> None:
        self.serialize(self._node(data))  # type: ignore[attr-defined]

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode or type(value) is not str or len(value) > 40:
            return super().resolve(kind, value, implicit)  # type: ignore[misc,no-any-return]
        key = (kind, value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            if len(self._resolved) >= 10_000:  # drawn text can be new every draw: keep the memory bounded
                self._resolved.clear()
            tag = self._resolved[key] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag

    def _node(self, data: Any) -> yaml.Node:
        kind = type(data)
        if kind is str:
            return yaml.ScalarNode(_STR, data)
        if kind is bool:
            return yaml.ScalarNode(_BOOL, "true" if data else "false")
        if kind is int:
            return yaml.ScalarNode(_INT, str(data))
        if data is None:
            return yaml.ScalarNode(_NULL, "null")
        if kind is dict:
            pairs = [(self._node(key), self._node(value)) for key, value in data.items()]
            return yaml.MappingNode(_MAP, pairs, flow_style=all(_plain(k) and _plain(v) for k, v in pairs))
        if kind is list:
            items = [self._node(item) for item in data]
            return yaml.SequenceNode(_SEQ, items, flow_style=all(_plain(item) for item in items))
        node: yaml.Node = self.represent_data(data)  # type: ignore[attr-defined]
        return node


def _plain(node: yaml.Node) -> bool:
    """A scalar without a style: what lets the collection holding it be written in flow style (`{a: 1}`)."""
    return isinstance(node, yaml.ScalarNode) and not node.style


def choose_dumper(with_libyaml: bool) -> type[Any]:
    """PlainDumper's text made faster, when PyYAML was built with libyaml: libyaml's emitter, fed the node graph
    by `_PlainNodes` (together about twenty times as fast as PlainDumper, the same text); else PlainDumper."""
    if not with_libyaml:
        return PlainDumper

    class CPlainDumper(_PlainNodes, yaml.CSafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return CPlainDumper


_DUMPER = choose_dumper(getattr(yaml, "__with_libyaml__", False) and hasattr(yaml, "CSafeDumper"))


def renamed(text: str, placeholder: str, name: str) -> str | None:
    """`text`, rendered with the name `placeholder`, as it is with `name`; None when the name's line is not
    the plain `name: PLACEHOLDER` that a name of the same form (same characters, same length) also gets."""
    head = f"name: {placeholder}\n"
    if not text.startswith(head) or len(name) != len(placeholder):
        return None
    return f"name: {name}\n{text[len(head) :]}"


def samples_csv(run: SampleRun) -> str:
    """One row per sample: its name and file, the draw, every drawn field, and what it costs."""
    drawn: dict[str, None] = {}
    for record in run.samples:
        drawn.update(dict.fromkeys(record.fields))
    # The counted depth is headed `layers`: beside a drawn `stages.regnet.depth` (blocks), two "depth" columns
    # would mean two different things.
    headers = ["name", "file", "draw", *drawn, *(_CSV_HEADERS.get(name, name) for name in QUANTITIES)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for record in run.samples:
        fields = record.fields
        cells = [
            value if type(value) is int else _cell(value) if key in fields else ""
            for key in drawn
            for value in (fields.get(key),)
        ]
        writer.writerow([record.name, record.file, record.draw, *cells, *(getattr(record, q) for q in QUANTITIES)])
    return out.getvalue()


def _cell(value: Any) -> str:
    return (
        json.dumps(value)
        if isinstance(value, (list, dict))
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


class SampleFiles:
    """A sample's folder being written: each spec file as its sample is kept, while the draws go on, then
    samples.csv and samples.json, and all of them put in place at once by `finish` (`files.StagedFolder`:
    leaving the `with` block without finishing, on an error, Ctrl-C or SIGTERM, leaves nothing new)."""

    def __init__(self, space: Space, out: Path, *, seed: int, force: bool):
        check_folder(out, force=force)
        self.space, self.out, self.seed = space, out, seed
        self._staged = StagedFolder(out, force=force)
        self._names: list[str] = []

    def __enter__(self) -> SampleFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._staged.__exit__(kind, exc, tb)

    def add(self, record: SampleRecord, text: str | None) -> None:
        """Write a kept sample's spec: `text` as rendered where its draw was evaluated, or rendered here."""
        if text is None:
            text = spec_text(self.space, self.seed, record)
        self._staged.add(record.file, text.encode())
        self._names.append(record.file)

    def finish(self, run: SampleRun) -> list[Path]:
        """Write samples.csv and samples.json, any spec `add` did not get, and put everything in place; return
        the paths."""
        written = set(self._names)
        for record in run.samples:
            if record.file not in written:
                self.add(record, None)
        self._staged.add(CSV_NAME, samples_csv(run).encode())
        self._staged.add(JSON_NAME, (to_json(run) + "\n").encode())
        self._staged.commit()
        return [self.out / record.file for record in run.samples] + [self.out / CSV_NAME, self.out / JSON_NAME]


def write_samples(space: Space, run: SampleRun, out: Path, *, force: bool) -> list[Path]:
    """Write every sampled spec, samples.csv and samples.json into `out` (created if need be), all or nothing;
    return the paths."""
    with SampleFiles(space, out, seed=run.seed, force=force) as files:
        return files.finish(run)


def is_samples_file(path: str) -> bool:
    """Whether `path` is what `archspec sample` writes (samples.json or .csv, or the folder holding them),
    as opposed to a spec: a folder with a samples.json, or a .json or .csv file named samples.*, or a
    .json file whose top level has "samples" and "statistics"."""
    target = Path(path)
    try:
        if target.is_dir():
            return (target / JSON_NAME).is_file()
        if target.name in (JSON_NAME, CSV_NAME):
            return True
        if target.suffix.lower() != ".json" or not target.is_file():
            return False
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "samples" in data and "statistics" in data


def read_samples(path: str | os.PathLike[str]) -> SampleRun:
    """A samples.json written by `archspec sample` (or the folder holding one); a located SpecError otherwise."""
    target = Path(path)
    if target.is_dir():
        target = target / JSON_NAME
    return samplesfile.read_samples(target, shorten(str(target), 200))
