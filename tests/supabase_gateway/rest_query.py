"""PostgREST's URL grammar, the subset the sync client uses, parsed into SQL (pure).

``?select=a,b`` (or ``*``), horizontal filters ``col=op.value`` with ``eq neq gt gte lt lte like
ilike is in`` and an optional ``not.`` prefix, ``order=col.asc|desc[.nullsfirst|.nullslast]``,
``limit``, ``offset``. Values may be double-quoted (docs/references/api/url_grammar.rst).
Anything else raises ``QueryError`` (rendered as PGRST100).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg import sql

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "like",
    "ilike": "ilike",
}
_IS_VALUES = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})


class QueryError(ValueError):
    """The query string does not parse (PGRST100)."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass
class Query:
    columns: list[str] | None = None  # None = *
    where: list[sql.Composable] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    order: list[sql.Composable] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    def where_sql(self) -> sql.Composable:
        if not self.where:
            return sql.SQL("true")
        return sql.SQL(" and ").join(self.where)

    def select_sql(self) -> sql.Composable:
        if self.columns is None:
            return sql.SQL("*")
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise QueryError(f'"failed to parse column name" ({name})', details=name)
    return name


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def split_list(value: str) -> list[str]:
    """Split ``a,"b,c",d`` on commas outside double quotes."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise QueryError("unterminated double quote", details=value)
    items.append("".join(current))
    return items


def parse_filter(column: str, expression: str) -> tuple[sql.Composable, list[str]]:
    col = sql.Identifier(_ident(column))
    negate = expression.startswith("not.")
    if negate:
        expression = expression[4:]
    op, sep, value = expression.partition(".")
    if not sep:
        raise QueryError(f'"failed to parse filter ({expression})"', details=expression)
    params: list[str] = []
    if op in _OPS:
        clause: sql.Composable = sql.SQL("{} {} %s").format(col, sql.SQL(_OPS[op]))
        params.append(_unquote(value).replace("*", "%") if "like" in op else _unquote(value))
    elif op == "is":
        if value.lower() not in _IS_VALUES:
            raise QueryError(f'"failed to parse filter (is.{value})"', details=value)
        clause = sql.SQL("{} is {}").format(col, sql.SQL(_IS_VALUES[value.lower()]))
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise QueryError(f'"failed to parse filter (in.{value})"', details=value)
        items = [_unquote(v) for v in split_list(value[1:-1])] if value[1:-1] else []
        if not items:
            clause = sql.SQL("false")
        else:
            clause = sql.SQL("{} in ({})").format(col, sql.SQL(", ").join(sql.Placeholder() for _ in items))
            params.extend(items)
    else:
        raise QueryError(f'"failed to parse filter ({op}.{value})"', details=op)
    if negate:
        clause = sql.SQL("not ({})").format(clause)
    return clause, params


def parse_order(value: str) -> list[sql.Composable]:
    terms: list[sql.Composable] = []
    for item in split_list(value):
        parts = item.split(".")
        col = sql.Identifier(_ident(parts[0]))
        direction, nulls = "asc", ""
        for mod in parts[1:]:
            if mod in ("asc", "desc"):
                direction = mod
            elif mod in ("nullsfirst", "nullslast"):
                nulls = " nulls first" if mod == "nullsfirst" else " nulls last"
            else:
                raise QueryError(f'"failed to parse order ({item})"', details=item)
        terms.append(sql.SQL("{} {}{}").format(col, sql.SQL(direction), sql.SQL(nulls)))
    return terms


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise QueryError(f'"failed to parse {name} ({value})"', details=value)
    return int(value)


def parse_query(pairs: list[tuple[str, str]]) -> Query:
    """Turn query-string pairs into a ``Query``; unknown operators raise ``QueryError``."""
    query = Query()
    for key, value in pairs:
        if key == "select":
            names = [v.strip() for v in split_list(value)]
            query.columns = None if names == ["*"] else [_ident(n) for n in names]
        elif key == "order":
            query.order.extend(parse_order(value))
        elif key == "limit":
            query.limit = _non_negative("limit", value)
        elif key == "offset":
            query.offset = _non_negative("offset", value)
        elif key in RESERVED_PARAMS:
            continue
        else:
            clause, params = parse_filter(key, value)
            query.where.append(clause)
            query.params.extend(params)
    return query
