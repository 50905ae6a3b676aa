"""YAML text -> plain data with a line/column mark for every value.

PyYAML's safe loader is used only to compose the node graph; values are built
here so that the traps of YAML turn into located errors instead of surprises:
duplicate keys, tabs in indentation, tags that would build Python objects,
non-UTF-8 bytes, and alias bombs (aliases are expanded under a node budget,
so a billion-laughs document is refused after a few thousand steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from archspec.errors import Mark, Problem, SpecError

# A spec has a few hundred values at most; these bounds leave ample room.
MAX_BYTES = 1 << 20
MAX_NODES = 20_000
MAX_DEPTH = 32

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """Parsed spec data; `marks[path]` locates each value, `key_marks[path]` its key."""

    data: dict
    source: str
    marks: dict[tuple, Mark] = field(default_factory=dict)
    key_marks: dict[tuple, Mark] = field(default_factory=dict)
    raw: dict[tuple, str] = field(default_factory=dict)

    def mark_for(self, path: tuple, key: bool = False) -> Mark:
        """The mark of `path`, or of its nearest located ancestor."""
        table = self.key_marks if key else self.marks
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if prefix in table:
                return table[prefix]
            if prefix in self.marks:
                return self.marks[prefix]
        return Mark(self.source, 1, 1)


def _mark(source: str, node_mark) -> Mark:
    return Mark(source, node_mark.line + 1, node_mark.column + 1)


def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            Problem(Mark(source, line, column), "", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the spec as UTF-8")
        ) from None


def _check_tabs(text: str, source: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip() and not line.lstrip().startswith("#"):
            column = indent.index("\t") + 1
            raise SpecError(Problem(Mark(source, number, column), "", "tab character in indentation; YAML indents with spaces"))


class _Builder:
    """Walks a composed node graph into plain data, recording marks."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.steps = 0
        self.scalars = SafeConstructor()

    def build(self, node, path: tuple, depth: int):
        self.steps += 1
        if self.steps > MAX_NODES:
            raise SpecError(
                Problem(
                    _mark(self.doc.source, node.start_mark),
                    "",
                    f"document expands to more than {MAX_NODES} values through aliases; refusing to expand it",
                )
            )
        if depth > MAX_DEPTH:
            raise SpecError(
                Problem(_mark(self.doc.source, node.start_mark), "", f"values nest more than {MAX_DEPTH} levels deep (a recursive alias?)")
            )
        self.doc.marks.setdefault(path, _mark(self.doc.source, node.start_mark))
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP_TAG, path)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG, path)
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        self._check_tag(node, None, path)
        self.doc.raw[path] = node.value
        try:
            return self.scalars.construct_object(node)
        except (ConstructorError, ValueError) as exc:
            raise SpecError(Problem(_mark(self.doc.source, node.start_mark), _dotted(path), f"cannot read value {node.value!r}: {exc}")) from None

    def _check_tag(self, node, expected: str | None, path: tuple) -> None:
        allowed = {expected} if expected else _SCALAR_TAGS
        if node.tag in allowed:
            return
        if node.tag.startswith("tag:yaml.org,2002:python/"):
            message = f"tag !!{node.tag.split(':', 2)[2]} is not allowed: archspec reads YAML with a safe loader that builds plain data only"
        else:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            message = f"tag {tag} is not allowed here: a spec holds plain mappings, lists, strings, numbers and booleans"
        raise SpecError(Problem(_mark(self.doc.source, node.start_mark), _dotted(path), message))

    def _key(self, node, path: tuple) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError(Problem(_mark(self.doc.source, node.start_mark), _dotted(path), "a key must be a plain name, not a list or mapping"))
        # Keys are names: the text as written, so `on:` or `1:` stays a string.
        return node.value

    def _mapping(self, node, path: tuple, depth: int) -> dict:
        result: dict = {}
        merged: dict = {}
        seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for key, value in self._merge_sources(value_node, path, depth).items():
                    merged.setdefault(key, value)
                continue
            key = self._key(key_node, path)
            key_mark = _mark(self.doc.source, key_node.start_mark)
            if key in seen:
                first = seen[key]
                raise SpecError(
                    Problem(key_mark, _dotted(path + (key,)), f"duplicate key `{key}` (first set at line {first.line}); YAML would silently keep the last")
                )
            seen[key] = key_mark
            self.doc.key_marks[path + (key,)] = key_mark
            result[key] = self.build(value_node, path + (key,), depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node, path: tuple, depth: int) -> dict:
        """`<<: *anchor` (or a list of anchors): keys written beside it win."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        combined: dict = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise SpecError(Problem(_mark(self.doc.source, source.start_mark), _dotted(path), "`<<` merges mappings only"))
            for key, value in self._mapping(source, path, depth + 1).items():
                combined.setdefault(key, value)
        return combined


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def parse(data: bytes | str, source: str) -> Document:
    """Parse one YAML document holding a mapping; raise SpecError with a mark on any problem."""
    if len(data) > MAX_BYTES:
        raise SpecError(Problem(Mark(source, 1, 1), "", f"file is larger than {MAX_BYTES // 1024} KiB; a spec is a short text file"))
    text = _decode(data, source)
    if "\x00" in text:
        raise SpecError(Problem(Mark(source, 1, 1), "", "file holds NUL bytes; a spec is a text file"))
    _check_tabs(text, source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = _mark(source, where) if where else Mark(source, 1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        raise SpecError(Problem(mark, "", f"invalid YAML: {reason}")) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(Mark(source, 1, 1), "", f"invalid YAML: {exc}")) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise SpecError(Problem(Mark(source, 1, 1), "", "the spec is empty; it must be a mapping with at least `stages`"))
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise SpecError(Problem(_mark(source, root.start_mark), "", f"the spec must be a mapping of keys to values, not {kind}"))
    doc = Document(data={}, source=source)
    doc.data = _Builder(doc).build(root, (), 0)
    return doc


def from_mapping(data, source: str = "<mapping>") -> Document:
    """Wrap an in-memory mapping as a Document (no line numbers to give)."""
    if not isinstance(data, dict):
        raise SpecError(Problem(Mark(source), "", f"the spec must be a mapping, not {type(data).__name__}"))
    return Document(data=_plain_copy(data, source, 0), source=source)


def _plain_copy(value, source: str, depth: int):
    if depth > MAX_DEPTH:
        raise SpecError(Problem(Mark(source), "", f"values nest more than {MAX_DEPTH} levels deep"))
    if isinstance(value, dict):
        return {str(k): _plain_copy(v, source, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v, source, depth + 1) for v in value]
    return value
