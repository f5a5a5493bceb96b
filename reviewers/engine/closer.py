"""The shortest valid ending of a JSON prefix under a schema, so constrained output always terminates.

A grammar mask keeps every token valid, but a model can keep writing (a long message, finding after
finding) until `max_new_tokens` runs out mid-object. `JsonPrefix` follows the bytes generated so far and
`closing()` gives the shortest bytes that finish them into a complete, schema-valid object: finish the
open string/number/literal, add each missing required property with its smallest value, close every
container. The engine checks before each token that this ending still fits the remaining budget.

The prefix must be compact JSON in schema property order: what the grammar (separators "," and ":", no
free whitespace, properties in order) lets through. Supported schema subset: objects with ordered
properties and `required`, arrays, strings (`minLength`, `enum`), integers (`minimum`), null, booleans,
`anyOf`, `$ref` to `$defs` -- what pydantic emits for `ReviewerOutput`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


class SchemaSubsetError(ValueError):
    """A JSON schema feature the closer does not understand."""


@dataclass
class Node:
    """One schema node, resolved: kind in object/array/string/integer/null/boolean/anyof."""

    kind: str
    props: list[tuple[str, Node]] = field(default_factory=list)
    required: set[str] = field(default_factory=set)
    items: Node | None = None
    enum: list[str] | None = None
    min_length: int = 0
    minimum: int | None = None
    options: list[Node] = field(default_factory=list)


def schema_tree(schema: dict[str, Any]) -> Node:
    """Resolve a JSON schema (with `$defs`) into `Node`s."""
    defs = schema.get("$defs", {})

    def build(s: dict[str, Any]) -> Node:
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[-1]
            if name not in defs:
                raise SchemaSubsetError(f"unresolved $ref {s['$ref']!r}")
            return build(defs[name])
        if "anyOf" in s:
            return Node(kind="anyof", options=[build(o) for o in s["anyOf"]])
        kind = s.get("type")
        if kind == "object":
            props = [(k, build(v)) for k, v in s.get("properties", {}).items()]
            return Node(kind="object", props=props, required=set(s.get("required", [])))
        if kind == "array":
            return Node(kind="array", items=build(s.get("items", {"type": "string"})))
        if kind == "string":
            return Node(kind="string", enum=s.get("enum"), min_length=int(s.get("minLength", 0)))
        if kind == "integer":
            return Node(kind="integer", minimum=s.get("minimum"))
        if kind in ("null", "boolean"):
            return Node(kind=kind)
        raise SchemaSubsetError(f"schema node {s!r} is outside the supported subset")

    return build(schema)


def smallest(node: Node) -> bytes:
    """The shortest valid JSON value for `node`."""
    if node.kind == "object":
        parts = [b'"' + k.encode() + b'":' + smallest(v) for k, v in node.props if k in node.required]
        return b"{" + b",".join(parts) + b"}"
    if node.kind == "array":
        return b"[]"
    if node.kind == "string":
        if node.enum:
            return b'"' + min(node.enum, key=len).encode() + b'"'
        return b'"' + b"x" * node.min_length + b'"'
    if node.kind == "integer":
        return str(max(node.minimum, 0) if node.minimum is not None else 0).encode()
    if node.kind == "null":
        return b"null"
    if node.kind == "boolean":
        return b"true"
    return min((smallest(o) for o in node.options), key=len)


@dataclass
class _Obj:
    node: Node
    state: str = "open"  # open | key | colon | value | after | comma
    next_prop: int = 0  # first property index that may still come
    current: int = -1  # property whose value is being written


@dataclass
class _Arr:
    node: Node
    state: str = "open"  # open | after | comma


@dataclass
class _Str:
    node: Node | None  # None for a key
    chars: int = 0
    escape: int = 0  # 0 none, 1 after backslash, 2..5 inside \\u with (escape - 2) hex digits
    utf8_lead: int = 0
    utf8_left: int = 0
    text: bytearray = field(default_factory=bytearray)  # kept for keys and enums only


@dataclass
class _Scalar:
    literal: bytes  # b"" for a number in progress; else the literal being spelled (null/true/false)
    typed: bytearray = field(default_factory=bytearray)


_NUMBER_BYTES = frozenset(b"0123456789-+.eE")


class JsonPrefix:
    """Follows a compact JSON prefix byte by byte and knows its shortest schema-valid ending."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.stack: list[_Obj | _Arr | _Str | _Scalar] = []
        self.started = False
        self.done = False

    def clone(self) -> JsonPrefix:
        twin = JsonPrefix.__new__(JsonPrefix)
        twin.root, twin.started, twin.done = self.root, self.started, self.done
        twin.stack = [copy.copy(f) for f in self.stack]
        for frame in twin.stack:
            if isinstance(frame, _Str):
                frame.text = bytearray(frame.text)
            elif isinstance(frame, _Scalar):
                frame.typed = bytearray(frame.typed)
        return twin

    # -- following bytes -------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        for byte in data:
            self._feed_byte(byte)

    def _feed_byte(self, b: int) -> None:
        if self.done:
            return  # bytes after the object are not ours to judge
        if not self.started:
            if b == ord("{"):
                self.started = True
                self.stack.append(_Obj(self.root))
            return
        top = self.stack[-1]
        if isinstance(top, _Str):
            self._string_byte(top, b)
        elif isinstance(top, _Scalar):
            if top.literal:
                top.typed.append(b)
                if len(top.typed) == len(top.literal):
                    self._value_done()
            elif b in _NUMBER_BYTES:
                top.typed.append(b)
            else:
                self._value_done()
                self._feed_byte(b)
        elif isinstance(top, _Obj):
            if top.state in ("open", "comma") and b == ord('"'):
                top.state = "key"
                self.stack.append(_Str(None))
            elif top.state in ("open", "after") and b == ord("}"):
                self._value_done()
            elif top.state == "colon" and b == ord(":"):
                top.state = "value"
            elif top.state == "value":
                self._start_value(top.node.props[top.current][1], b)
            elif top.state == "after" and b == ord(","):
                top.state = "comma"
        else:  # _Arr
            if top.state in ("open", "after") and b == ord("]"):
                self._value_done()
            elif top.state == "after" and b == ord(","):
                top.state = "comma"
            elif top.state in ("open", "comma"):
                self._start_value(top.node.items, b)

    def _string_byte(self, s: _Str, b: int) -> None:
        keep = s.node is None or s.node.enum is not None
        if s.escape == 1:
            s.escape = 2 if b == ord("u") else 0
            s.chars += s.escape == 0
        elif s.escape >= 2:
            s.escape = 0 if s.escape == 5 else s.escape + 1
            s.chars += s.escape == 0
        elif s.utf8_left:
            s.utf8_left -= 1
            s.chars += s.utf8_left == 0
        elif b == ord("\\"):
            s.escape = 1
        elif b == ord('"'):
            if s.node is None:
                self._key_done(bytes(s.text))
            else:
                self._value_done()
            return
        elif b >= 0xC0:
            s.utf8_lead, s.utf8_left = b, (1 if b < 0xE0 else 2 if b < 0xF0 else 3)
        else:
            s.chars += 1
        if keep:
            s.text.append(b)

    def _start_value(self, node: Node, b: int) -> None:
        if node.kind == "anyof":
            node = _option_for(node, b)
        if b == ord('"'):
            self.stack.append(_Str(node))
        elif b == ord("{"):
            self.stack.append(_Obj(node))
        elif b == ord("["):
            self.stack.append(_Arr(node))
        elif b in (ord("n"), ord("t"), ord("f")):
            word = {ord("n"): b"null", ord("t"): b"true", ord("f"): b"false"}[b]
            self.stack.append(_Scalar(word, bytearray([b])))
        else:
            self.stack.append(_Scalar(b"", bytearray([b])))

    def _key_done(self, key: bytes) -> None:
        self.stack.pop()
        obj = self.stack[-1]
        assert isinstance(obj, _Obj)
        names = [k for k, _ in obj.node.props]
        obj.current = names.index(key.decode(), obj.next_prop)
        obj.state = "colon"

    def _value_done(self) -> None:
        self.stack.pop()
        if not self.stack:
            self.done = True
            return
        parent = self.stack[-1]
        if isinstance(parent, _Obj):
            parent.next_prop = parent.current + 1
        parent.state = "after"

    # -- the ending ------------------------------------------------------------------------------

    def closing(self) -> bytes:
        """The shortest bytes that complete the prefix into a schema-valid object (b"" when done)."""
        if self.done:
            return b""
        if not self.started:
            return smallest(self.root)
        out = bytearray()
        key: bytes | None = None  # a key being typed, to be finished by its object
        child_closed = False
        for frame in reversed(self.stack):
            if isinstance(frame, _Str):
                if frame.node is None:
                    key = bytes(frame.text)
                    continue
                out += _finish_string(frame)
                child_closed = True
            elif isinstance(frame, _Scalar):
                if frame.literal:
                    out += frame.literal[len(frame.typed):]
                elif bytes(frame.typed) in (b"", b"-"):
                    out += b"1"
                child_closed = True
            elif isinstance(frame, _Obj):
                out += _finish_object(frame, key, child_closed)
                key, child_closed = None, True
            else:
                if frame.state == "comma" and not child_closed:
                    out += smallest(frame.node.items)
                out += b"]"
                child_closed = True
        return bytes(out)


def _option_for(node: Node, b: int) -> Node:
    wanted = {ord('"'): "string", ord("{"): "object", ord("["): "array", ord("n"): "null"}.get(b)
    if wanted is None:
        wanted = "boolean" if b in (ord("t"), ord("f")) else "integer"
    for option in node.options:
        if option.kind == wanted:
            return option
    raise SchemaSubsetError(f"no anyOf option starts with {chr(b)!r}")


def _finish_string(s: _Str) -> bytes:
    out = bytearray()
    chars = s.chars
    if s.escape == 1:
        out += b"n"
        chars += 1
    elif s.escape >= 2:
        out += b"0" * (6 - s.escape)
        chars += 1
    elif s.utf8_left:
        # the smallest valid continuation for this lead byte (UTF-8 forbids some second bytes)
        needed = {0: 1, 1: 2, 2: 3}[(s.utf8_lead >= 0xE0) + (s.utf8_lead >= 0xF0)]
        typed = needed - s.utf8_left
        if typed == 0:
            out.append({0xE0: 0xA0, 0xF0: 0x90}.get(s.utf8_lead, 0x80))
            out += b"\x80" * (s.utf8_left - 1)
        else:
            out += b"\x80" * s.utf8_left
        chars += 1
    assert s.node is not None
    if s.node.enum:
        typed_text = bytes(s.text).decode()
        choice = min((e for e in s.node.enum if e.startswith(typed_text)), key=len)
        out += choice[len(typed_text):].encode()
    else:
        out += b"x" * max(0, s.node.min_length - chars)
    return bytes(out + b'"')


def _finish_object(obj: _Obj, key: bytes | None, child_closed: bool) -> bytes:
    props = obj.node.props
    out = bytearray()
    state, next_prop, current = obj.state, obj.next_prop, obj.current
    if key is not None:  # finish the key being typed with an allowed property name
        index = _choose_property(obj, lambda name: name.encode().startswith(key))
        out += props[index][0].encode()[len(key):] + b'":' + smallest(props[index][1])
        state, next_prop = "after", index + 1
    elif child_closed:
        state, next_prop = "after", current + 1
    elif state == "colon":
        out += b":" + smallest(props[current][1])
        state, next_prop = "after", current + 1
    elif state == "value":
        out += smallest(props[current][1])
        state, next_prop = "after", current + 1
    elif state == "comma":
        index = _choose_property(obj, lambda name: True)
        out += b'"' + props[index][0].encode() + b'":' + smallest(props[index][1])
        state, next_prop = "after", index + 1
    missing = [(k, v) for k, v in props[next_prop:] if k in obj.node.required]
    parts = [b'"' + k.encode() + b'":' + smallest(v) for k, v in missing]
    if state == "open":
        out += b",".join(parts)
    else:
        out += b"".join(b"," + p for p in parts)
    return bytes(out + b"}")


def _choose_property(obj: _Obj, fits) -> int:
    """The next property that may come here and fits: a required one if possible (it must come)."""
    allowed = []
    for index in range(obj.next_prop, len(obj.node.props)):
        allowed.append(index)
        if obj.node.props[index][0] in obj.node.required:
            break  # a required property cannot be skipped
    fitting = [i for i in allowed if fits(obj.node.props[i][0])]
    if not fitting:
        raise SchemaSubsetError("the prefix names a property the schema does not allow here")
    required = [i for i in fitting if obj.node.props[i][0] in obj.node.required]
    return (required or fitting)[0]


class ObjectEnd:
    """Finds where the first top-level JSON object of free text ends (for unconstrained output)."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.done = False

    def feed(self, data: bytes) -> bool:
        """Follow `data`; True once the first top-level object has closed."""
        for b in data:
            if self.done:
                break
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif b == ord("\\"):
                    self.escaped = True
                elif b == ord('"'):
                    self.in_string = False
            elif b == ord('"') and self.depth > 0:
                self.in_string = True
            elif b in (ord("{"), ord("[")):
                self.depth += 1
            elif b in (ord("}"), ord("]")) and self.depth > 0:
                self.depth -= 1
                self.done = self.depth == 0
        return self.done
