"""YAML text -> plain data with a line/column mark for every value.

PyYAML's safe loader is used only to compose the node graph; values are built
here so that the traps of YAML turn into located errors instead of surprises:
duplicate keys, tabs in indentation, tags that would build Python objects,
non-UTF-8 bytes, YAML 1.1's base-60 and octal integers, and alias bombs
(aliases are expanded under a node budget, so a billion-laughs document is
refused after a few thousand steps, and its text is never printed back).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from archspec.errors import Mark, Problem, SpecError, shorten

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
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# PyYAML's token names, in words (quoted forms first: they contain the bare ones).
_TOKENS = {
    "'<stream end>'": "the end of the file",
    "'<block end>'": "the end of the indented block",
    "'<block mapping start>'": "a key indented differently",
    "'<block sequence start>'": "a list item indented differently",
    "<stream end>": "the end of the file",
    "<block end>": "the end of the indented block",
}
# YAML 1.1 reads `1:30` as 90 (base 60) and `010` as 8 (octal): never what a spec means.
# Python refuses to read integers of more than 4,300 digits; no field takes more than a few.
_MAX_DIGITS = 100
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


@dataclass
class Document:
    """Parsed spec data; `marks[path]` locates each value, `key_marks[path]` its key."""

    data: dict[str, Any]
    source: str
    marks: dict[tuple[str | int, ...], Mark] = field(default_factory=dict)
    key_marks: dict[tuple[str | int, ...], Mark] = field(default_factory=dict)
    raw: dict[tuple[str | int, ...], str] = field(default_factory=dict)
    # The overrides applied after the files were read, in order: `KEY=VALUE`, the label messages give it (None:
    # `--set KEY=VALUE`), its mark and whether a problem it brings is reported at it; `before_overrides` makes the
    # document again as it was before the first of them, so that a problem the overrides brought can be traced to
    # the one that brought it.
    overrides: list[tuple[str, str | None, Mark, bool]] = field(default_factory=list)
    before_overrides: Callable[[], Document] | None = field(default=None, compare=False, repr=False)

    def mark_for(self, path: tuple[str | int, ...], key: bool = False) -> Mark:
        """The mark of `path`, or of its nearest located ancestor."""
        table = self.key_marks if key else self.marks
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            if prefix in table:
                return table[prefix]
            if prefix in self.marks:
                return self.marks[prefix]
        # A document read from text starts at 1:1; an in-memory mapping has no lines to give.
        return Mark(self.source, 1, 1) if self.marks else Mark(self.source)


def _mark(source: str, node_mark: yaml.Mark) -> Mark:
    return Mark(source, node_mark.line + 1, node_mark.column + 1)


def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(Problem(Mark(source, 1, 1), "", "the file is UTF-16 text; save the spec as UTF-8"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            Problem(
                Mark(source, line, column), "", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the spec as UTF-8"
            )
        ) from None


def _position_mark(text: str, position: int, source: str) -> Mark:
    line = text.count("\n", 0, position) + 1
    return Mark(source, line, position - (text.rfind("\n", 0, position) + 1) + 1)


def _check_tabs(text: str, source: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip() and not line.lstrip().startswith("#"):
            column = indent.index("\t") + 1
            raise SpecError(
                Problem(Mark(source, number, column), "", "tab character in indentation; YAML indents with spaces")
            )


class _Builder:
    """Walks a composed node graph into plain data, recording marks."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.steps = 0
        self.scalars = SafeConstructor()
        self.visited: set[int] = set()
        self.aliased = False

    def _count(self, node: yaml.Node, depth: int, path: tuple[str | int, ...]) -> None:
        """One step of the budget that keeps alias bombs and recursive aliases from expanding."""
        self.steps += 1
        if self.steps <= MAX_NODES and depth <= MAX_DEPTH:
            return
        # Blame the top-level value being expanded: where the budget ran out says little.
        top = path[:1]
        mark = self.doc.marks.get(top) or _mark(self.doc.source, node.start_mark)
        if self.steps > MAX_NODES and not self.aliased:
            message = f"document holds more than {MAX_NODES} values; a spec holds a few hundred"
        elif self.steps > MAX_NODES:
            message = f"document expands to more than {MAX_NODES} values through aliases; refusing to expand it"
        else:
            message = f"values nest more than {MAX_DEPTH} levels deep" + (
                " (a recursive alias?)" if self.aliased else ""
            )
        raise SpecError(Problem(mark, _dotted(top), message))

    def build(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> Any:
        if isinstance(node, yaml.CollectionNode):
            # A collection reached twice is an alias: the budget's message then names aliases as the cause.
            self.aliased = self.aliased or id(node) in self.visited
            self.visited.add(id(node))
        self._count(node, depth, path)
        self.doc.marks.setdefault(path, _mark(self.doc.source, node.start_mark))
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP_TAG, path)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        self._check_tag(node, None, path)
        self.doc.raw[path] = node.value
        self._check_number(node, path)
        try:
            return self.scalars.construct_object(node)
        except (ConstructorError, ValueError, OverflowError) as exc:
            reason = shorten(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise SpecError(
                Problem(
                    _mark(self.doc.source, node.start_mark),
                    _dotted(path),
                    f"cannot read value {shorten(repr(node.value))}: {reason}",
                )
            ) from None

    def _check_number(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        # A plain scalar's style is None (PyYAML's composer) or "" (libyaml's).
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_INT_TAG, _FLOAT_TAG) or node.style:
            return
        text = node.value
        if node.tag == _INT_TAG and len(text) > _MAX_DIGITS:
            message = f"a number of {len(text):,} digits is far too large for any field of a spec"
        elif _SEXAGESIMAL.fullmatch(text):
            message = (
                f"`{shorten(text)}` is a base-60 number in YAML 1.1 (1:30 reads as 90); write the number "
                "itself, or quote it if it is text"
            )
        elif node.tag == _INT_TAG and _OCTAL.fullmatch(text):
            message = (
                f"`{shorten(text)}` is an octal number in YAML 1.1 (010 reads as 8); write it without the leading zero"
            )
        else:
            return
        raise SpecError(Problem(_mark(self.doc.source, node.start_mark), _dotted(path), message))

    def _check_tag(self, node: yaml.Node, expected: str | None, path: tuple[str | int, ...]) -> None:
        allowed = {expected} if expected else _SCALAR_TAGS
        if node.tag in allowed:
            return
        if node.tag == _TIMESTAMP_TAG and isinstance(node, yaml.ScalarNode) and not node.style:
            # Written without a tag: YAML 1.1 turned a plain `2015-12-10` into a date.
            message = f"YAML reads `{shorten(node.value)}` as a date; quote it to make it text"
        elif node.tag.startswith("tag:yaml.org,2002:python/"):
            message = (
                f"tag !!{node.tag.split(':', 2)[2]} is not allowed: archspec reads YAML with a safe loader "
                "that builds plain data only"
            )
        else:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            message = (
                f"tag {tag} is not allowed here: a spec holds plain mappings, lists, strings, numbers and booleans"
            )
        raise SpecError(Problem(_mark(self.doc.source, node.start_mark), _dotted(path), message))

    def _key(self, node: yaml.Node, path: tuple[str | int, ...]) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError(
                Problem(
                    _mark(self.doc.source, node.start_mark),
                    _dotted(path),
                    "a key must be a plain name, not a list or mapping",
                )
            )
        self._check_tag(node, None, path)
        # Keys are names: the text as written, so `on:` or `1:` stays a string.
        name: str = node.value
        return name

    def _mapping(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        self._count(node, depth, path)
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for key, value in self._merge_sources(value_node, path, depth).items():
                    merged.setdefault(key, value)
                continue
            key = self._key(key_node, path)
            child: tuple[str | int, ...] = (*path, key)
            key_mark = _mark(self.doc.source, key_node.start_mark)
            if key in seen:
                first = seen[key]
                raise SpecError(
                    Problem(
                        key_mark,
                        _dotted(child),
                        f"duplicate key `{shorten(key)}` (first set at line {first.line}); "
                        "YAML would silently keep the last",
                    )
                )
            seen[key] = key_mark
            self.doc.key_marks[child] = key_mark
            result[key] = self.build(value_node, child, depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        """`<<: *anchor` (or a list of anchors): keys written beside it win."""
        self._count(node, depth, path)
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        combined: dict[str, Any] = {}
        for source in sources:
            self.aliased = self.aliased or id(source) in self.visited
            self.visited.add(id(source))
            self._count(source, depth + 1, path)
            if not isinstance(source, yaml.MappingNode):
                raise SpecError(
                    Problem(_mark(self.doc.source, source.start_mark), _dotted(path), "`<<` merges mappings only")
                )
            for key, value in self._mapping(source, path, depth + 1).items():
                combined.setdefault(key, value)
        return combined


def _dotted(path: tuple[str | int, ...]) -> str:
    return shorten(".".join(str(p) for p in path))


def _yaml_error(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    """PyYAML's two-part message (context, problem) as one located sentence."""
    where = exc.problem_mark or exc.context_mark
    mark = _mark(source, where) if where else Mark(source, 1, 1)
    problem, context = exc.problem or "", exc.context or ""
    for token, words in _TOKENS.items():
        problem = problem.replace(token, words)
    if "'\\t'" in problem or "'\t'" in problem:
        return Problem(mark, "", "tab character here; YAML separates and indents with spaces")
    if problem and context.startswith("while ") and exc.context_mark is not None and exc.context_mark is not where:
        reason = f"{problem} ({context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    elif problem and context:
        reason = f"{context}, {problem}" if not problem.startswith("but ") else f"{context} {problem}"
    else:
        reason = problem or context or "not valid YAML"
    if "indented" in problem:
        reason += "; check the indentation"
    return Problem(mark, "", f"invalid YAML: {shorten(reason, 200)}")


def _compose(text: str) -> yaml.Node | None:
    """The node graph of `text`: composed by libyaml where it is safe to, else by PyYAML's Python composer.

    libyaml composes a large file (a space with hundreds of stages) fifty times faster, but it recurses in C
    without a limit, reads a tab after `key:` as a space, and its messages differ: it is used only on text
    without tabs, that PyYAML's reader accepts and that nests at most a few levels more than a spec may
    (counted on libyaml's parser, which does not recurse).
    Anything else, and any text libyaml refuses, goes to the Python composer, whose messages users see.
    """
    fast = getattr(yaml, "__with_libyaml__", False) and "\t" not in text
    if fast and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            if _flow_depth(text) <= MAX_DEPTH + 1:
                return yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _flow_depth(text: str) -> int:
    """How deep the collections of `text` nest, from libyaml's events (a YAMLError if it cannot parse them)."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return deepest


# The first bytes of a zip archive: torch's checkpoints (`build --out`, `train`) are zip files.
CHECKPOINT_MAGIC = b"PK\x03\x04"


def parse(data: bytes | str, source: str) -> Document:
    """Parse one YAML document holding a mapping; raise SpecError with a mark on any problem."""
    if (data[:4] if isinstance(data, bytes) else data[:4].encode("latin-1", "replace")) == CHECKPOINT_MAGIC:
        raise SpecError(
            Problem(
                Mark(source, 1, 1),
                "",
                "this is a checkpoint (a torch file), not a spec: build, export, bench and show take it as SPEC; "
                "elsewhere give the spec it holds (`archspec show CHECKPOINT > spec.yaml`) and the "
                "checkpoint as --weights",
            )
        )
    if len(data) > MAX_BYTES:
        raise SpecError(
            Problem(Mark(source, 1, 1), "", f"file is larger than {MAX_BYTES // 1024} KiB; a spec is a short text file")
        )
    text = _decode(data, source)
    if "\x00" in text:
        raise SpecError(
            Problem(_position_mark(text, text.index("\x00"), source), "", "file holds NUL bytes; a spec is a text file")
        )
    _check_tabs(text, source)
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_yaml_error(exc, source)) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            Problem(
                _position_mark(text, exc.position, source),
                "",
                f"character U+{exc.character:04X} is not allowed in YAML text; remove it",
            )
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(Mark(source, 1, 1), "", f"invalid YAML: {shorten(str(exc).splitlines()[0])}")) from None
    except RecursionError:
        # PyYAML composes nested brackets recursively; a spec nests a few levels at most.
        raise SpecError(
            Problem(
                Mark(source, 1, 1),
                "",
                f"values nest far more than {MAX_DEPTH} levels deep; a spec is a shallow document",
            )
        ) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise SpecError(
            Problem(Mark(source, 1, 1), "", "the spec is empty; it must be a mapping with at least `stages`")
        )
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise SpecError(
            Problem(_mark(source, root.start_mark), "", f"the spec must be a mapping of keys to values, not {kind}")
        )
    doc = Document(data={}, source=source)
    doc.data = _Builder(doc).build(root, (), 0)
    return doc


def from_mapping(data: object, source: str = "<mapping>") -> Document:
    """Wrap an in-memory mapping as a Document (no line numbers to give)."""
    if not isinstance(data, dict):
        raise SpecError(Problem(Mark(source), "", f"the spec must be a mapping, not {type(data).__name__}"))
    return Document(data=_plain_copy(data, source, 0), source=source)


def _plain_copy(value: Any, source: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise SpecError(Problem(Mark(source), "", f"values nest more than {MAX_DEPTH} levels deep"))
    if isinstance(value, dict):
        return {str(k): _plain_copy(v, source, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v, source, depth + 1) for v in value]
    return value
