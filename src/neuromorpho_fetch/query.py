"""Keyword criteria to the ``q``/``fq`` parameters of ``/api/neuron/select``.

The server speaks a Solr-like language (reference A5): ``field:v1,v2`` OR-s values inside one field,
each further field goes in its own ``fq`` and is AND-ed. Two quirks decide the quoting rules here:

* an unquoted multi-word value is split on whitespace and only the *last* word is matched
  (``brain_region:entorhinal cortex`` silently means ``cortex``), so whitespace forces quotes;
* a comma separates OR-ed values and ``:`` ``"`` ``(`` and friends are syntax, so those force quotes
  too; inside quotes ``"`` and ``\\`` are backslash-escaped.

Wildcards (``*`` any run, ``?`` one character) only work unquoted, so a value holding one passes
through as written; whitespace inside such a value becomes ``?`` (what neuromorphr does) because
quoting it would turn the wildcard into a literal star.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import UsageError

#: A criterion's value: one string, or several OR-ed together.
Criteria = Mapping[str, "str | int | Sequence[str | int]"]

# Characters that are syntax to a Lucene/Solr parser, plus the comma this API uses for OR.
_NEEDS_QUOTES = re.compile(r'[\s,:"\\/()\[\]{}^~!+&|]')
_WILDCARD = re.compile(r"[*?]")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A field name at the start of a raw clause, or after whitespace/(/boolean operators: ``a:x AND b:y``.
# A boolean operator written into a CLI term (outside quotes): ``species:rat OR archive:*``.
_OPERATOR = re.compile(r"(?:^|\s)(OR|AND|NOT|\|\||&&)(?:\s|$)")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_RAW_FIELDS = re.compile(r"(?:^|[\s(+\-!])([A-Za-z_][A-Za-z0-9_]*):(?![/\\])")


def format_value(value: str | int) -> str:
    """One value in the form the server matches literally (or as a wildcard pattern)."""
    text = str(value)
    if _WILDCARD.search(text):
        return re.sub(r"\s+", "?", text.strip())
    if text == "" or _NEEDS_QUOTES.search(text) or text.startswith("-"):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return text


def field_clause(field: str, values: str | int | Sequence[str | int]) -> str:
    """``field:v1,v2``; a list is OR-ed, an empty list is a usage error (it would match nothing)."""
    if not _FIELD.fullmatch(field):
        raise UsageError(f"not a field name: {field!r}")
    items: list[str | int] = [values] if isinstance(values, str | int) else list(values)
    if not items:
        raise UsageError(f"no values given for query field {field!r}")
    return f"{field}:{','.join(format_value(v) for v in items)}"


def split_values(text: str) -> list[str]:
    """Split a CLI value on commas outside double quotes; quotes are removed, ``\\"`` unescaped.

    ``rat,mouse`` gives two values; ``"layer 2,3"`` gives one, with its comma.
    """
    values: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            values.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise UsageError(f"unbalanced double quote in query value {text!r}")
    values.append("".join(current).strip())
    return [v for v in values if v != ""]


@dataclass(frozen=True, slots=True)
class Query:
    """A select query: ``q`` plus AND-ed ``fq`` filters, and the structured criteria it came from.

    ``criteria`` keeps the field names so the client can check them against ``/api/neuron/fields``
    before asking the server; raw ``q``/``fq`` text is passed on unchecked.
    """

    q: str | None = None
    fq: tuple[str, ...] = ()
    criteria: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def build(
        cls,
        *,
        q: str | None = None,
        fq: Sequence[str] | str = (),
        **criteria: str | int | Sequence[str | int],
    ) -> Query:
        """Criteria become clauses; a raw ``q`` stays ``q`` and every criterion becomes an ``fq``."""
        return cls(q=q, fq=(fq,) if isinstance(fq, str) else tuple(fq)).with_criteria(criteria)

    @classmethod
    def parse(cls, terms: Iterable[str]) -> Query:
        """The CLI's ``--query field:value`` terms; a repeated field OR-s its values.

        ``species:rat,mouse`` and ``species:rat --query species:mouse`` mean the same thing.
        """
        merged: dict[str, list[str]] = {}
        for term in terms:
            field, sep, raw = term.partition(":")
            field = field.strip()
            if not sep or not _FIELD.fullmatch(field):
                raise UsageError(f"query terms look like field:value, got {term!r}")
            operator = _OPERATOR.search(_QUOTED.sub('""', raw))
            if operator is not None:
                # Rejected, not supported: fields are AND-ed as separate fq's so each selection is
                # disjoint from the others (the one dedupe relies on it), and the real server's
                # handling of OR across fields is not on record. Silently it became a ?-wildcard
                # that matched nothing (issue 10).
                raise UsageError(
                    f"--query {term!r}: {operator.group(1)} is not supported; terms are AND-ed "
                    "(repeat --query), values of one field are OR-ed with a comma (species:rat,mouse)"
                )
            values = split_values(raw)
            if not values:
                raise UsageError(f"no value after {field!r} in query term {term!r}")
            merged.setdefault(field, []).extend(values)
        return cls().with_criteria(merged)

    def with_criteria(self, criteria: Mapping[str, str | int | Sequence[str | int]]) -> Query:
        """Add AND-ed criteria (a field already present OR-s the new values with the old)."""
        merged: dict[str, list[str]] = {name: list(values) for name, values in self.criteria}
        for name, values in criteria.items():
            items = [values] if isinstance(values, str | int) else list(values)
            field_clause(name, items)  # validates the name and non-emptiness
            merged.setdefault(name, []).extend(str(v) for v in items)
        return Query(
            q=self.q,
            fq=self.fq,
            criteria=tuple((name, tuple(dict.fromkeys(vals))) for name, vals in merged.items()),
        )

    def merge(self, other: Query) -> Query:
        """Both queries must hold: criteria are combined, raw filters are AND-ed."""
        if self.q is not None and other.q is not None and self.q != other.q:
            q: str | None = self.q
            extra: tuple[str, ...] = (other.q,)
        else:
            q, extra = self.q if self.q is not None else other.q, ()
        base = Query(q=q, fq=self.fq + extra + other.fq, criteria=self.criteria)
        return base.with_criteria(dict(other.criteria))

    @property
    def is_empty(self) -> bool:
        """No condition at all: the client lists ``/api/neuron`` instead of selecting."""
        return self.q is None and not self.fq and not self.criteria

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names of the structured criteria (what the client validates)."""
        return tuple(name for name, _ in self.criteria)

    def raw_fields(self) -> tuple[str, ...]:
        """Field names mentioned in raw ``q``/``fq`` text, best effort (for error messages)."""
        found: dict[str, None] = {}
        for text in (self.q or "", *self.fq):
            for match in _RAW_FIELDS.finditer(text):
                found[match.group(1)] = None
        return tuple(found)

    def clauses(self) -> tuple[str | None, tuple[str, ...]]:
        """The final ``(q, fq)``: without a raw ``q`` the first criterion takes its place."""
        built = [field_clause(name, values) for name, values in self.criteria]
        if self.q is not None:
            return self.q, self.fq + tuple(built)
        if built:
            return built[0], self.fq + tuple(built[1:])
        if self.fq:
            # The server wants a q; a lone filter is as good a q as any (AND is commutative).
            return self.fq[0], self.fq[1:]
        return None, ()

    def params(self) -> list[tuple[str, str]]:
        """Query-string pairs, ``fq`` repeated once per filter."""
        q, fq = self.clauses()
        pairs: list[tuple[str, str]] = [] if q is None else [("q", q)]
        pairs.extend(("fq", f) for f in fq)
        return pairs

    def rename_fields(self, mapping: Mapping[str, str]) -> Query:
        """Same query with criteria field names replaced (the server's own spelling)."""
        return Query(
            q=self.q,
            fq=self.fq,
            criteria=tuple((mapping.get(name, name), values) for name, values in self.criteria),
        )

    def __str__(self) -> str:
        q, fq = self.clauses()
        parts = [] if q is None else [f"q={q}"]
        parts.extend(f"fq={f}" for f in fq)
        return " & ".join(parts) or "(all neurons)"
