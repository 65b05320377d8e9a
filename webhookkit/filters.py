"""Content filters: a webhook receives only the payloads its filter matches.

A filter is a JSON document in the MongoDB style that Convoy and Hookdeck Outpost use::

    {"order.total": {"$gte": 100}, "order.channel": {"$in": ["web", "pos"]}}

Keys are dotted paths into the payload (``order.lines.0.sku`` indexes an array), or the
logical operators ``$and``, ``$or`` (lists of filters) and ``$not`` (one filter). A value is
a literal (equality), an operator document (``{"$gte": 100}``) or a nested filter
(``{"order": {"total": 100}}`` is ``{"order.total": 100}``). Every condition must hold.

A path that runs into an array looks into each element, and a condition on an array holds
when it holds for the array or for any element (``{"tags": "vip"}`` matches
``{"tags": ["new", "vip"]}``). Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists
$regex $startsWith $endsWith $not``; Convoy's and Outpost's spellings ``$neq`` and
``$exist`` are accepted too. Comparisons never mix types: a number is never greater than a
string, and ``true`` is not ``1``.

:func:`compile_filter` checks a document once (operators, operand types, regular
expressions, depth and size) and raises :class:`~webhookkit.exceptions.InvalidFieldError`
with ``field="filter"`` naming the place at fault; :meth:`PayloadFilter.matches` is then a
pure, bounded function of the payload. See ``docs/filters.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .exceptions import InvalidFieldError

if TYPE_CHECKING:
    from .apps import Webhook
    from .payloads import PayloadGroup

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NODES",
    "MAX_REGEX_LENGTH",
    "MAX_REGEX_SUBJECT",
    "PayloadFilter",
    "compile_filter",
    "filter_from_json",
    "filter_targets",
]

#: Nesting of filter documents, operator documents and literals.
MAX_DEPTH: Final = 16
#: JSON values (keys, operators, literals) in one filter.
MAX_NODES: Final = 2000
#: The filter as compact JSON, in bytes.
MAX_DOCUMENT_BYTES: Final = 16 * 1024
MAX_PATH_SEGMENTS: Final = 32
MAX_KEY_LENGTH: Final = 256
MAX_REGEX_LENGTH: Final = 256
#: Strings longer than this never match ``$regex`` (bounds the time one match may take).
MAX_REGEX_SUBJECT: Final = 10_000

_ALIASES: Final = {"$neq": "$ne", "$exist": "$exists"}
_FIELD_OPERATORS: Final = frozenset(
    {
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$exists",
        "$regex",
        "$options",
        "$startsWith",
        "$endsWith",
        "$not",
    }
    | set(_ALIASES)
)
_REGEX_FLAGS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}

#: What a compiled condition tests: the payload's root value.
Test = Callable[[Any], bool]
#: What a compiled field operator tests: the values found at the field's path.
ValueTest = Callable[[list[Any]], bool]

_MISSING: Final = object()


class PayloadFilter:
    """A compiled filter: :meth:`matches` tells whether a payload passes.

    Immutable and hashable; two filters are equal when their documents are. ``document``
    is a copy of the document as given, ``to_json()`` its compact JSON (what stores keep).
    """

    __slots__ = ("_canonical", "_json", "_test")

    def __init__(self, json_text: str, canonical: str, test: Test) -> None:
        self._json = json_text
        self._canonical = canonical
        self._test = test

    def matches(self, payload: Any) -> bool:
        """True if ``payload`` (parsed JSON: dicts, lists, str, int, float, bool, None)
        passes the filter."""
        return self._test(payload)

    def matches_body(self, body: bytes | str) -> bool:
        """:meth:`matches` on a JSON body; a body that is not JSON never matches."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return False
        return self._test(payload)

    @property
    def document(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._json)
        return result

    def to_json(self) -> str:
        return self._json

    def __reduce__(self) -> tuple[Callable[[str], PayloadFilter], tuple[str]]:
        # Pickled and deep-copied as its JSON: the compiled closures are rebuilt from it.
        return filter_from_json, (self._json,)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PayloadFilter):
            return NotImplemented
        return self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)

    def __repr__(self) -> str:
        text = self._json if len(self._json) <= 200 else self._json[:197] + "..."
        return f"PayloadFilter({text})"


def compile_filter(document: Mapping[str, Any] | PayloadFilter) -> PayloadFilter:
    """Check ``document`` and compile it; :class:`InvalidFieldError` (``field="filter"``)
    names the place at fault for an unknown operator, a wrong operand, a bad or risky
    regular expression, or a document too deep or too large."""
    if isinstance(document, PayloadFilter):
        return document
    if not isinstance(document, Mapping):
        raise _error((), f"must be a JSON object, got {type(document).__name__}")
    compiler = _Compiler()
    test = compiler.document(document, (), 0)
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:  # checked above; kept as a last guard
        raise _error((), f"is not JSON: {exc}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise _error((), f"is {size} bytes as JSON, at most {MAX_DOCUMENT_BYTES} allowed")
    canonical = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return PayloadFilter(text, canonical, test)


@functools.lru_cache(maxsize=1024)
def filter_from_json(text: str) -> PayloadFilter:
    """The filter stored as ``text`` (``PayloadFilter.to_json()``), compiled once per text:
    stores call this for every webhook they read."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _error((), f"stored filter is not JSON: {exc}") from None
    return compile_filter(document)


def filter_targets(
    groups: Iterable[PayloadGroup],
) -> tuple[list[PayloadGroup], list[Webhook]]:
    """Apply each webhook's filter to its group's body, once per body.

    Returns the groups with only the webhooks whose filter matches (webhooks without a
    filter always stay; groups left empty are dropped; groups without a body pass
    unchanged) and the webhooks skipped, for counting as ``filtered``.
    """
    kept_groups: list[PayloadGroup] = []
    skipped: list[Webhook] = []
    for group in groups:
        if group.body is None or all(w.filter is None for w in group.webhooks):
            kept_groups.append(group)
            continue
        try:
            payload: Any = json.loads(group.body)
        except (ValueError, RecursionError):
            payload = _MISSING
        kept = []
        for webhook in group.webhooks:
            rule = webhook.filter
            if rule is None or (payload is not _MISSING and rule.matches(payload)):
                kept.append(webhook)
            else:
                skipped.append(webhook)
        if kept:
            kept_groups.append(dataclasses.replace(group, webhooks=tuple(kept)))
    return kept_groups, skipped


# -- compiling --------------------------------------------------------------------------------


Where = tuple[str, ...]


def _error(where: Where, problem: str) -> InvalidFieldError:
    place = " > ".join(where)
    return InvalidFieldError(f"filter{' at ' + place if place else ''}: {problem}", field="filter")


class _Compiler:
    """One compilation: counts nodes against :data:`MAX_NODES`."""

    def __init__(self) -> None:
        self.nodes = 0

    def _count(self, where: Where, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _error(where, f"too large: more than {MAX_NODES} keys and values")
        if depth > MAX_DEPTH:
            raise _error(where, f"nested deeper than {MAX_DEPTH} levels")

    def document(self, doc: Mapping[str, Any], where: Where, depth: int) -> Test:
        """A filter document: every key must hold."""
        self._count(where, depth)
        tests = [self.entry(key, value, where, depth) for key, value in doc.items()]
        return _all_of(tests)

    def entry(self, key: Any, value: Any, where: Where, depth: int) -> Test:
        if not isinstance(key, str):
            raise _error(where, f"key {key!r} must be a string")
        here = (*where, key)
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _error(here, "needs a non-empty list of filters")
            if len(value) > MAX_NODES:
                raise _error(here, f"more than {MAX_NODES} filters")
            tests = []
            for i, item in enumerate(value):
                spot = (*where, f"{key}[{i}]")
                if not isinstance(item, Mapping):
                    raise _error(spot, "must be a filter object")
                tests.append(self.document(item, spot, depth + 1))
            return _all_of(tests) if key == "$and" else _any_of(tests)
        if key == "$not":
            if not isinstance(value, Mapping) or not value:
                raise _error(here, "needs a non-empty filter object")
            inner = self.document(value, here, depth + 1)
            return lambda root: not inner(root)
        if key.startswith("$"):
            raise _error(
                here,
                f"unknown operator {key!r} here (use $and, $or or $not, or a field path)",
            )
        return self.field(_path(key, here), value, here, depth)

    def field(self, segments: tuple[str, ...], value: Any, where: Where, depth: int) -> Test:
        if isinstance(value, Mapping):
            operators = [k for k in value if isinstance(k, str) and k.startswith("$")]
            if not value:
                raise _error(
                    where,
                    'an empty object is ambiguous: use {"$eq": {}} or {"$exists": true}',
                )
            if operators and len(operators) != len(value):
                raise _error(where, "mixes operators ($...) with field names")
            if not operators:
                # Outpost's nesting: {"order": {"total": 1}} is {"order.total": 1}.
                self._count(where, depth)
                tests = []
                for key, inner in value.items():
                    if not isinstance(key, str):
                        raise _error(where, f"key {key!r} must be a string")
                    here = (*where, key)
                    more = _path(key, here)
                    if len(segments) + len(more) > MAX_PATH_SEGMENTS:
                        raise _error(here, f"path longer than {MAX_PATH_SEGMENTS} segments")
                    tests.append(self.field((*segments, *more), inner, here, depth + 1))
                return _all_of(tests)
            check = self.operators(value, where, depth + 1)
        else:
            literal = self.literal(value, where, depth + 1)
            check = _equals_any(literal)
        return _at_path(segments, check)

    def operators(self, ops: Mapping[str, Any], where: Where, depth: int) -> ValueTest:
        """An operator document on one field: every operator must hold."""
        self._count(where, depth)
        if "$options" in ops and "$regex" not in ops:
            raise _error((*where, "$options"), "only goes with $regex")
        tests: list[ValueTest] = []
        for raw, operand in ops.items():
            here = (*where, raw)
            if raw not in _FIELD_OPERATORS:
                raise _error(here, f"unknown operator {raw!r} (known: {_known()})")
            op = _ALIASES.get(raw, raw)
            if op == "$options":
                continue
            if op == "$not":
                if not isinstance(operand, Mapping) or not operand:
                    raise _error(here, 'needs an object of operators, such as {"$in": [...]}')
                if not all(isinstance(k, str) and k.startswith("$") for k in operand):
                    raise _error(here, "takes operators only ($eq, $in, ...)")
                inner = self.operators(operand, here, depth + 1)
                tests.append(_negate(inner))
            elif op in ("$eq", "$ne"):
                literal = self.literal(operand, here, depth + 1)
                equal = _equals_any(literal)
                tests.append(equal if op == "$eq" else _negate(equal))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                tests.append(self.compare(op, operand, here))
            elif op in ("$in", "$nin"):
                tests.append(self.membership(op, operand, here, depth))
            elif op == "$exists":
                if not isinstance(operand, bool):
                    raise _error(here, "needs true or false")
                tests.append(_exists if operand else _negate(_exists))
            elif op == "$regex":
                tests.append(_regex_test(operand, ops.get("$options", ""), here))
            else:  # $startsWith, $endsWith
                if not isinstance(operand, str):
                    raise _error(here, "needs a string")
                tests.append(_affix_test(op, operand))
        return _all_values(tests)

    def compare(self, op: str, operand: Any, where: Where) -> ValueTest:
        if not _is_number(operand) and not isinstance(operand, str):
            raise _error(where, "needs a number or a string")
        if isinstance(operand, float) and not math.isfinite(operand):
            raise _error(where, f"{operand!r} is not a JSON number")
        bound = operand
        numeric = _is_number(bound)
        ok = _ORDER[op]

        def test(found: list[Any]) -> bool:
            for value in _candidates(found):
                if (_is_number(value) if numeric else isinstance(value, str)) and ok(value, bound):
                    return True
            return False

        return test

    def membership(self, op: str, operand: Any, where: Where, depth: int) -> ValueTest:
        if not isinstance(operand, list):
            raise _error(where, "needs a list of values")
        literals = [
            self.literal(item, (*where, f"[{i}]"), depth + 1) for i, item in enumerate(operand)
        ]
        tests = [_equals_any(item) for item in literals]

        def contains(found: list[Any]) -> bool:
            return any(test(found) for test in tests)

        return contains if op == "$in" else _negate(contains)

    def literal(self, value: Any, where: Where, depth: int) -> Any:
        """Check that ``value`` is JSON (bounded in depth and size); return it unchanged."""
        self._count(where, depth)
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _error(where, f"{value!r} is not a JSON number")
            return value
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.literal(item, (*where, f"[{i}]"), depth + 1)
            return value
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _error(where, f"key {key!r} must be a string")
                self.literal(item, (*where, key), depth + 1)
            return value
        raise _error(where, f"{type(value).__name__} is not a JSON value")


def _known() -> str:
    return " ".join(sorted(_FIELD_OPERATORS - {"$options"}))


def _path(key: str, where: Where) -> tuple[str, ...]:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _error(where, f"a field path needs 1 to {MAX_KEY_LENGTH} characters")
    segments = tuple(key.split("."))
    if any(not s for s in segments):
        raise _error(where, "a field path may not have empty segments ('a..b', '.a', 'a.')")
    if any(s.startswith("$") for s in segments):
        raise _error(where, "a path segment may not start with '$'")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise _error(where, f"path longer than {MAX_PATH_SEGMENTS} segments")
    return segments


# -- matching ---------------------------------------------------------------------------------


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _negate(test: ValueTest) -> ValueTest:
    return lambda found: not test(found)


def _exists(found: list[Any]) -> bool:
    return bool(found)


def _all_of(tests: Sequence[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    items = tuple(tests)
    return lambda root: all(test(root) for test in items)


def _any_of(tests: Sequence[Test]) -> Test:
    items = tuple(tests)
    return lambda root: any(test(root) for test in items)


def _all_values(tests: Sequence[ValueTest]) -> ValueTest:
    if len(tests) == 1:
        return tests[0]
    items = tuple(tests)
    return lambda found: all(test(found) for test in items)


def _at_path(segments: tuple[str, ...], check: ValueTest) -> Test:
    return lambda root: check(_resolve(root, segments))


def _resolve(root: Any, segments: tuple[str, ...]) -> list[Any]:
    """The values at ``segments``, MongoDB style: an array is indexed by a numeric segment,
    else each of its objects is looked into. Iterative; one step per segment."""
    current = [root]
    for segment in segments:
        found: list[Any] = []
        for value in current:
            if isinstance(value, dict):
                item = value.get(segment, _MISSING)
                if item is not _MISSING:
                    found.append(item)
            elif isinstance(value, list):
                if segment.isdigit():
                    index = int(segment)
                    if index < len(value):
                        found.append(value[index])
                else:
                    found += [
                        element[segment]
                        for element in value
                        if isinstance(element, dict) and segment in element
                    ]
        if not found:
            return found
        current = found
    return current


def _candidates(found: list[Any]) -> Iterable[Any]:
    """Each value found, and the elements of each array found."""
    for value in found:
        yield value
        if isinstance(value, list):
            yield from value


def _equals_any(literal: Any) -> ValueTest:
    def test(found: list[Any]) -> bool:
        return any(_json_equal(value, literal) for value in _candidates(found))

    return test


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(value: Any, literal: Any) -> bool:
    """JSON equality (``true`` is not ``1``; ``1`` is ``1.0``). Recursion follows the
    literal, whose depth :func:`compile_filter` bounded."""
    if isinstance(literal, bool) or isinstance(value, bool):
        return value is literal
    if _is_number(literal):
        return _is_number(value) and value == literal
    if literal is None or isinstance(literal, str):
        return type(value) is type(literal) and value == literal
    if isinstance(literal, list):
        return (
            isinstance(value, list)
            and len(value) == len(literal)
            and all(_json_equal(v, lit) for v, lit in zip(value, literal, strict=True))
        )
    if isinstance(literal, Mapping):
        return (
            isinstance(value, dict)
            and value.keys() == literal.keys()
            and all(_json_equal(value[k], lit) for k, lit in literal.items())
        )
    return False


def _affix_test(op: str, text: str) -> ValueTest:
    def test(found: list[Any]) -> bool:
        for value in _candidates(found):
            if isinstance(value, str) and (
                value.startswith(text) if op == "$startsWith" else value.endswith(text)
            ):
                return True
        return False

    return test


def _regex_test(pattern: Any, options: Any, where: Where) -> ValueTest:
    if not isinstance(pattern, str):
        raise _error(where, "needs a string pattern")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise _error(where, f"pattern is {len(pattern)} characters, at most {MAX_REGEX_LENGTH}")
    if not isinstance(options, str) or any(c not in _REGEX_FLAGS for c in options):
        raise _error((*where[:-1], "$options"), f"must be letters from {''.join(_REGEX_FLAGS)}")
    problem = _risky(pattern)
    if problem:
        raise _error(where, problem)
    flags = 0
    for letter in options:
        flags |= _REGEX_FLAGS[letter]
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise _error(where, f"invalid regular expression: {exc}") from None
    search = compiled.search

    def test(found: list[Any]) -> bool:
        for value in _candidates(found):
            if isinstance(value, str) and len(value) <= MAX_REGEX_SUBJECT and search(value):
                return True
        return False

    return test


def _risky(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack catastrophically, or None.

    Refused: a repeated group (``*``, ``+``, ``{n,}``, ``{m,n}``) that itself contains a
    repetition or an alternation, such as ``(a+)+`` or ``(a|aa)*``, and backreferences.
    A conservative scan of the text, not a full parser: it may refuse a safe pattern, and a
    refused pattern can usually be written without the nesting (``[ab]*`` for ``(a|b)*``).
    """
    # Each open group: [contains a repetition, contains an alternation].
    stack: list[list[bool]] = [[False, False]]
    last_group: list[bool] | None = None  # the group that just closed, if the last atom
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        atom_group: list[bool] | None = None
        if c == "\\":
            if i + 1 < n and pattern[i + 1].isdigit() and pattern[i + 1] != "0":
                return "backreferences (\\1...) are not allowed"
            i += 2
        elif c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        elif c == "(":
            if pattern.startswith("(?P=", i):
                return "backreferences ((?P=name)) are not allowed"
            stack.append([False, False])
            i += 1
        elif c == ")":
            if len(stack) > 1:
                atom_group = stack.pop()
                if atom_group[0]:
                    stack[-1][0] = True
            i += 1
        elif c == "|":
            stack[-1][1] = True
            i += 1
        elif c in "*+?{":
            end, many, variable = _quantifier(pattern, i)
            if end == i:  # a literal "{"
                i += 1
            else:
                if many and last_group is not None and (last_group[0] or last_group[1]):
                    return (
                        "a repeated group may not contain a repetition or an "
                        "alternation, such as (a+)+ or (a|b)* (catastrophic backtracking)"
                    )
                if variable:
                    stack[-1][0] = True
                i = end
                # A lazy or possessive suffix (?, +) belongs to this quantifier.
                if i < n and pattern[i] in "?+":
                    i += 1
                last_group = None
                continue
        else:
            i += 1
        last_group = atom_group
    return None


_BRACES: Final = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _quantifier(pattern: str, i: int) -> tuple[int, bool, bool]:
    """The end of the quantifier at ``i``; whether it may repeat more than once; whether
    its count varies (``{3}`` does not)."""
    c = pattern[i]
    if c in "*+":
        return i + 1, True, True
    if c == "?":
        return i + 1, False, True
    match = _BRACES.match(pattern, i)
    if match is None or not (match.group(1) or match.group(3)):
        return i, False, False
    low, comma, high = match.groups()
    if not comma:
        return match.end(), int(low) > 1, False
    many = not high or int(high) > 1
    return match.end(), many, not high or high != low
