"""PostgREST (``/rest/v1``) emulation: RPC calls and table reads/writes on the real database.

Each request runs in one transaction as the JWT's role with ``request.jwt.claims`` set (see
``db.api_transaction``), the SQL is shaped like PostgREST's (``json_to_record`` for RPC arguments,
``json_agg`` over a subquery for reads), and errors come back as PostgREST renders them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .db import API_ROLES, ConnectionPool, api_transaction
from .errors import jwt_expired, jwt_invalid, postgrest_error, postgrest_from_pg
from .http import Request, Response
from .rest_query import QueryError, parse_query
from .tokens import TokenError, Tokens

_FUNCTIONS_SQL = """
select p.proname, p.proargnames, p.proargmodes, p.pronargdefaults, p.proretset,
       t.typtype, array(select format_type(a, null) from unnest(p.proargtypes) a) as argtypes
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type t on t.oid = p.prorettype
 where n.nspname = 'public' and p.proname = %s
"""


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        return self.role != "anon"


def resolve_caller(tokens: Tokens, request: Request) -> Caller:
    """The database role and claims PostgREST would use for this request's bearer token."""
    header = request.header("Authorization")
    if not header:
        return Caller("anon", {"role": "anon"})
    if not header.lower().startswith("bearer "):
        raise jwt_invalid("Missing authorization header")
    try:
        claims = tokens.decode(header[7:].strip())
    except TokenError as exc:
        raise (jwt_expired() if exc.expired else jwt_invalid(exc.message)) from exc
    role = str(claims.get("role") or "anon")
    if role not in API_ROLES:
        raise postgrest_error(400, "22023", f'role "{role}" does not exist')
    return Caller(role, claims)


def _input_args(row: dict[str, Any]) -> list[tuple[str, str]]:
    names = row["proargnames"] or []
    modes = row["proargmodes"]
    if modes is not None:
        names = [n for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
    return list(zip(names, row["argtypes"], strict=False))


@dataclass
class RestService:
    pool: ConnectionPool
    tokens: Tokens
    max_rows: int = 1000

    def handle(self, request: Request) -> Response:
        caller = resolve_caller(self.tokens, request)
        sub = request.path.removeprefix("/rest/v1/")
        try:
            if sub.startswith("rpc/"):
                if request.method != "POST":
                    raise postgrest_error(405, "PGRST101", "Only GET and POST are supported for functions")
                return self._rpc(request, caller, sub[4:])
            return self._table(request, caller, sub)
        except QueryError as exc:
            raise postgrest_error(400, "PGRST100", exc.message, exc.details) from exc
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise postgrest_error(503, "PGRST001", "Database client error. Retrying the connection.") from exc
            diag = exc.diag
            raise postgrest_from_pg(
                exc.sqlstate,
                diag.message_primary or str(exc),
                diag.message_detail,
                diag.message_hint,
                caller.authenticated,
            ) from exc

    # -- RPC ----------------------------------------------------------------------------------
    def _rpc(self, request: Request, caller: Caller, name: str) -> Response:
        try:
            args = json.loads(request.body) if request.body.strip() else {}
        except ValueError as exc:
            raise postgrest_error(400, "PGRST102", "Empty or invalid json") from exc
        if not isinstance(args, dict):
            raise postgrest_error(400, "PGRST102", "Empty or invalid json")
        with self.pool.connection() as conn:
            with conn.cursor(row_factory=dict_row) as cur:
                candidates = cur.execute(_FUNCTIONS_SQL, (name,)).fetchall()
            func = self._pick_overload(candidates, set(args))
            if func is None:
                keys = ", ".join(sorted(args))
                raise postgrest_error(
                    404,
                    "PGRST202",
                    f"Could not find the function public.{name}({keys}) in the schema cache",
                    f"Searched for the function public.{name} with parameters {keys} or with a"
                    " single unnamed json/jsonb parameter, but no matches were found in the"
                    " schema cache.",
                )
            statement = self._rpc_sql(name, func, [k for k, _ in _input_args(func) if k in args])
            with api_transaction(conn, caller.role, caller.claims, "POST", request.path) as tx:
                row = tx.execute(statement, (json.dumps(args),) if args else ()).fetchone()
        value = row[0] if row else None
        return Response(200, json.dumps(value).encode())

    @staticmethod
    def _pick_overload(candidates: list[dict[str, Any]], keys: set[str]) -> dict[str, Any] | None:
        for func in candidates:
            inputs = [n for n, _ in _input_args(func)]
            required = inputs[: len(inputs) - func["pronargdefaults"]]
            if keys <= set(inputs) and set(required) <= keys:
                return func
        return None

    @staticmethod
    def _rpc_sql(name: str, func: dict[str, Any], present: list[str]) -> sql.Composed:
        types = dict(_input_args(func))
        call = sql.SQL("{}.{}({})").format(
            sql.Identifier("public"),
            sql.Identifier(name),
            sql.SQL(", ").join(sql.SQL("{} := _a.{}").format(sql.Identifier(k), sql.Identifier(k)) for k in present),
        )
        source: sql.Composable = sql.SQL("")
        if present:
            source = sql.SQL(" from json_to_record(%s::json) as _a({})").format(
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(types[k])) for k in present)
            )
        if func["proretset"]:
            return sql.SQL("select coalesce(json_agg(_r), '[]'::json) from (select _f.*{} , lateral {} _f) _r").format(
                source if present else sql.SQL(" from (select) _a"), call
            )
        if func["typtype"] == "c":
            return sql.SQL("select to_json(_f) from (select ({}).*{}) _f").format(call, source)
        return sql.SQL("select to_json({}){}").format(call, source)

    # -- tables -------------------------------------------------------------------------------
    def _table(self, request: Request, caller: Caller, name: str) -> Response:
        with self.pool.connection() as conn:
            exists = conn.execute(
                "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'public' and c.relname = %s and c.relkind in ('r','v','m','p')",
                (name,),
            ).fetchone()
            if exists is None:
                raise postgrest_error(404, "PGRST205", f"Could not find the table 'public.{name}' in the schema cache")
            query = parse_query(request.query)
            table = sql.Identifier("public", name)
            prefer = (request.header("Prefer") or "").replace(" ", "").split(",")
            representation = "return=representation" in prefer
            with api_transaction(conn, caller.role, caller.claims, request.method, request.path) as tx:
                if request.method in ("GET", "HEAD"):
                    return self._read(request, tx, table, query)
                write, params, status = self._write_sql(request, table, query)
                stmt = sql.SQL(
                    "with _w as ({} returning {}) select coalesce(json_agg(_w), '[]'::json)::text from _w"
                ).format(write, query.select_sql())
                row = tx.execute(stmt, params).fetchone()
        if not representation:
            return Response(status if status == 201 else 204, b"", content_type=None)
        return Response(200 if status == 204 else status, (row[0] if row else "[]").encode())

    def _write_sql(self, request: Request, table: sql.Composable, query: Any) -> tuple[sql.Composable, list[Any], int]:
        if request.method == "POST":
            body = self._rows(request)
            cols = sorted({k for row in body for k in row})
            if not cols:
                raise postgrest_error(400, "PGRST102", "Empty or invalid json")
            ident = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
            stmt = sql.SQL("insert into {} ({}) select {} from json_populate_recordset(null::{}, %s::json)").format(
                table, ident, ident, table
            )
            return stmt, [json.dumps(body)], 201
        if request.method == "PATCH":
            patch = self._rows(request)
            if len(patch) != 1 or not patch[0]:
                raise postgrest_error(400, "PGRST102", "Empty or invalid json")
            targets = sql.SQL(", ").join(sql.Identifier(c) for c in sorted(patch[0]))
            stmt = sql.SQL(
                "update {} set ({}) = (select {} from json_populate_record(null::{}, %s::json)) where {}"
            ).format(table, targets, targets, table, query.where_sql())
            return stmt, [json.dumps(patch[0]), *query.params], 204
        if request.method == "DELETE":
            stmt = sql.SQL("delete from {} where {}").format(table, query.where_sql())
            return stmt, list(query.params), 204
        raise postgrest_error(405, "PGRST117", "Unsupported HTTP method")

    def _read(self, request: Request, tx: psycopg.Connection, table: sql.Composable, query: Any) -> Response:
        limit = min(query.limit if query.limit is not None else self.max_rows, self.max_rows)
        order = sql.SQL(" order by {}").format(sql.SQL(", ").join(query.order)) if query.order else sql.SQL("")
        stmt = sql.SQL(
            "select coalesce(json_agg(_t), '[]'::json)::text, count(*) from ("
            "select {} from {} where {}{} limit {} offset {}) _t"
        ).format(
            query.select_sql(),
            table,
            query.where_sql(),
            order,
            sql.Literal(limit),
            sql.Literal(query.offset),
        )
        row = tx.execute(stmt, query.params).fetchone()
        text, count = (row[0], row[1]) if row else ("[]", 0)
        headers = [("Content-Range", f"{query.offset}-{query.offset + count - 1}/*" if count else "*/*")]
        if "application/vnd.pgrst.object+json" in (request.header("Accept") or ""):
            rows = json.loads(text)
            if len(rows) != 1:
                raise postgrest_error(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    f"The result contains {len(rows)} rows",
                )
            return Response(200, json.dumps(rows[0]).encode(), headers)
        return Response(200, text.encode(), headers)

    @staticmethod
    def _rows(request: Request) -> list[dict[str, Any]]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise postgrest_error(400, "PGRST102", "Empty or invalid json") from exc
        rows = body if isinstance(body, list) else [body]
        if not all(isinstance(r, dict) for r in rows):
            raise postgrest_error(400, "PGRST102", "All object keys must match")
        return rows
