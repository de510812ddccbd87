"""YAML for config files that may hold anything: bounded, plain data, every problem located.

PyYAML's safe loader still expands aliases (a few hundred bytes can stand for gigabytes), recurses
once per nesting level, keeps the last of two equal keys without a word and lets Python's own
limits (integer digits, recursion) surface as tracebacks. This loader refuses anchors, aliases
and merge keys, bounds size, node count, nesting and integer length, requires UTF-8 without control
characters, rejects duplicate keys naming both lines, and reports every problem as
`yaml.path: message (line L, column C)`. Only the `!env NAME` tag is added to the safe types.

libyaml parses when it is installed (five times faster on a 10,000-service file); composition
and construction are always the Python code below, so both parsers get the same checks.
"""

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from exporter.shown import shown

MAX_BYTES: Final = 8 << 20
MAX_NODES: Final = 500_000
"""Keys, values, lists and mappings. Time and memory grow with them, not with bytes (two bytes
make a node: `0,`). 10,000 services like deploy/'s make 3 MiB and 340,000 nodes, parsed in about
4 s and 200 MB."""
MAX_DEPTH: Final = 64
"""Nesting levels, the document itself included; a service uses five, its JSON body the rest."""
MAX_INT_DIGITS: Final = 32

_BYTE_ORDER_MARKS: Final = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
# What YAML 1.1 allows in a stream (its "printable" set), as a class of what it does not.
_NOT_PRINTABLE: Final = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_VALUE_TAG: Final = "tag:yaml.org,2002:value"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_PLAIN_KEY: Final = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
_MAX_KEY_IN_PATH: Final = 60
_MAX_PATH: Final = 120
_PATH_STEP: Final = re.compile(
    r"""\[\d+\]|\.?(?:'(?:[^'\\]|\\.)*'…?|"(?:[^"\\]|\\.)*"…?|[^.\['"]+)"""
)


class YAMLLoadError(Exception):
    """The file is not acceptable YAML; `errors` are `location: message` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class EnvRef:
    """A `!env NAME` scalar, resolved (or reported unset) where its YAML path is known."""

    name: str


def join_path(path: str, key: object) -> str:
    """`services` + 0 → `services[0]`; `expect` + `json` → `expect.json`.

    A key that is not a plain word (`X Bad`, `a.b`, `url:`) is quoted, and a long one cut short,
    so a path always reads back unambiguously.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    text = str(key)
    if not _PLAIN_KEY.match(text):
        text = repr(text[:_MAX_KEY_IN_PATH]) + ("…" if len(text) > _MAX_KEY_IN_PATH else "")
    return f"{path}.{text}" if path else text


def load_yaml(source: bytes | str) -> Any:
    """The one document in `source` as plain Python data; YAMLLoadError says what and where."""
    if len(source) > MAX_BYTES:
        raise YAMLLoadError([f"(file): larger than {MAX_BYTES >> 20} MiB"])
    text = source if isinstance(source, str) else _decode(source)
    _require_printable(text)
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except _Problem as exc:
        raise YAMLLoadError([str(exc)]) from None
    except yaml.MarkedYAMLError as exc:
        raise YAMLLoadError([_syntax_error(exc)]) from None
    except yaml.YAMLError as exc:
        raise YAMLLoadError([f"(yaml): {exc}".replace("\n", " ")]) from None
    finally:
        loader.dispose()
    if loader.problems:
        raise YAMLLoadError(loader.problems)
    return document


def _decode(data: bytes) -> str:
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            raise YAMLLoadError(
                [f"(file): starts with a {encoding} byte order mark; save the file as UTF-8"]
            )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YAMLLoadError(
            [
                f"line {line}, column {column}: byte 0x{data[exc.start]:02x} (offset "
                f"{exc.start}) is not UTF-8; save the file as UTF-8"
            ]
        ) from None


def _require_printable(text: str) -> None:
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    raise YAMLLoadError(
        [f"line {line}, column {column}: character U+{ord(found[0]):04X} is not allowed in YAML"]
    )


def _shortened(path: str) -> str:
    """The first whole steps of a long path (a 64-level one is of no use in full), then `…`."""
    if len(path) <= _MAX_PATH:
        return path
    kept = ""
    for step in _PATH_STEP.findall(path):
        if len(kept) + len(step) > _MAX_PATH:
            break
        kept += step
    return kept + "…"


def _at(mark: Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"


def _syntax_error(exc: yaml.MarkedYAMLError) -> str:
    where = _at(exc.problem_mark) or _at(exc.context_mark) or "(yaml)"
    message = exc.problem or exc.context or "not valid YAML"
    if exc.context and exc.problem:
        context_at = _at(exc.context_mark)
        message += f" ({exc.context}{' at ' + context_at if context_at else ''})"
    return f"{where}: {message}"


class _Problem(Exception):
    """Stops loading at once: anchors, aliases, nesting, a value Python cannot take."""


class _Hardened(Composer, SafeConstructor):
    """The composer and constructor every parser shares, with this module's limits."""

    def _start(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        self.problems: list[str] = []
        self._nodes = 0
        self._open_paths: list[str] = []
        self._paths: dict[Node, str] = {}

    def _problem(self, path: str, mark: Mark, message: str) -> _Problem:
        return _Problem(f"{_shortened(path) or '(top level)'}: {message} ({_at(mark)})")

    def _node_problem(self, node: Node, message: str) -> _Problem:
        return self._problem(self._paths.get(node, ""), node.start_mark, message)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        path = self._child_path(parent, index)
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise self._problem(
                path,
                event.start_mark,
                "YAML anchors and aliases are not allowed; write the value out "
                "(settings shared by every service go under `defaults`)",
            )
        if len(self._open_paths) >= MAX_DEPTH:
            raise self._problem(path, event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise self._problem(
                path, event.start_mark, f"the file has more than {MAX_NODES} keys and values"
            )
        self._open_paths.append(path)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open_paths.pop()
        self._paths[node] = path
        return node

    def _child_path(self, parent: Node | None, index: Any) -> str:
        if parent is None:
            return ""
        here = self._open_paths[-1]
        if isinstance(index, int):
            return join_path(here, index)
        if isinstance(index, ScalarNode):
            return join_path(here, index.value)
        return here  # a key: its mapping is the place to look

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except _Problem:
            raise
        except yaml.MarkedYAMLError as exc:
            raise self._node_problem(node, exc.problem or str(exc)) from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # e.g. `!!timestamp 2001-13-45`, `!!bool maybe`: PyYAML lets Python's error through.
            value = node.value if isinstance(node, ScalarNode) else "this value"
            tag = node.tag.rpartition(":")[2]
            raise self._node_problem(node, f"cannot read {shown(value)} as {tag}") from None

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise self._node_problem(node, "must be a mapping here")
        path = self._paths.get(node, "")
        mapping: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise self._node_problem(key_node, "YAML merge keys (<<) are not allowed")
            if key_node.tag == _VALUE_TAG:
                key_node.tag = _STR_TAG  # a plain `=` key, as SafeConstructor reads it
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise self._node_problem(key_node, "a key must be a plain value")
            line = key_node.start_mark.line + 1
            if key in lines:
                self.problems.append(
                    f"{join_path(path, key)}: duplicate key (line {line}; "
                    f"first at line {lines[key]})"
                )
                continue
            lines[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_int(self, node: Node) -> int:
        if isinstance(node, ScalarNode):
            digits = len(node.value.replace("_", "").lstrip("+-"))
            if digits > MAX_INT_DIGITS:
                raise self._node_problem(
                    node, f"integer of {digits} digits (at most {MAX_INT_DIGITS})"
                )
        return super().construct_yaml_int(node)

    def construct_yaml_str(self, node: Node) -> str:
        value = super().construct_yaml_str(node)
        if _SURROGATE.search(value):
            raise self._node_problem(node, "contains a lone surrogate escape, which is not text")
        return value

    def construct_undefined(self, node: Node) -> Any:
        raise self._node_problem(
            node, f"unknown tag {shown(node.tag)} (besides YAML's own, only !env is allowed)"
        )

    def construct_env(self, node: Node) -> EnvRef:
        name = self.construct_scalar(node)
        if not _ENV_NAME.match(name):
            raise self._node_problem(
                node, f"!env needs a variable name like LINKER_TOKEN, got {shown(name)}"
            )
        return EnvRef(name)


_Hardened.add_constructor("tag:yaml.org,2002:int", _Hardened.construct_yaml_int)
_Hardened.add_constructor("tag:yaml.org,2002:str", _Hardened.construct_yaml_str)
_Hardened.add_constructor("!env", _Hardened.construct_env)
_Hardened.add_constructor(None, _Hardened.construct_undefined)


class _PythonLoader(_Hardened, Reader, Scanner, Parser, Resolver):
    """PyYAML's own parser: used where PyYAML was built without libyaml."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Resolver.__init__(self)
        self._start()


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _LibyamlLoader(_Hardened, CParser, Resolver):
        """libyaml's parser (events only): the nodes and values are still built above."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Resolver.__init__(self)
            self._start()

    _Loader: type[_Hardened] = _LibyamlLoader
else:
    _Loader = _PythonLoader
