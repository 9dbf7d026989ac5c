"""Pure parts of the gateway: status mapping, URL grammar, key rules, TUS metadata."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.supabase_gateway.errors import pg_error_status, storage_error
from tests.supabase_gateway.rest_query import QueryError, parse_query, split_list
from tests.supabase_gateway.storage import VALID_OBJECT_KEY
from tests.supabase_gateway.tus import parse_metadata

SQLSTATE = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=5, max_size=5)


@pytest.mark.parametrize(
    ("state", "auth", "status"),
    [
        ("23505", True, 409),
        ("23503", True, 409),
        ("23502", True, 400),
        ("22P02", True, 400),
        ("42501", True, 403),
        ("42501", False, 401),
        ("42883", True, 404),
        ("57014", True, 500),
        ("08006", True, 503),
        ("P0001", True, 400),
        ("40001", True, 500),
        ("53400", True, 500),
        ("53300", True, 503),
        ("PT402", True, 402),
    ],
)
def test_documented_status_table(state: str, auth: bool, status: int) -> None:
    assert pg_error_status(state, auth) == status


@given(SQLSTATE, st.booleans())
def test_every_sqlstate_maps_to_an_http_error_status(state: str, auth: bool) -> None:
    assert 400 <= pg_error_status(state, auth) <= 599 or state.startswith("PT")


@given(st.integers(min_value=400, max_value=599))
def test_storage_errors_are_http_400_except_500(code: int) -> None:
    err = storage_error(code, "X", "m")
    assert err.status == (500 if code == 500 else 400)
    assert err.body["statusCode"] == str(code)


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters='",\\'), max_size=5),
        min_size=1,
        max_size=5,
    )
)
def test_split_list_round_trips_quoted_items(items: list[str]) -> None:
    quoted = ",".join(f'"{i}"' for i in items)
    assert [i[1:-1] for i in split_list(quoted)] == items


def test_query_parsing_and_errors() -> None:
    q = parse_query(
        [
            ("select", "id,title"),
            ("id", "eq.abc"),
            ("hlc", "gt.5"),
            ("deleted", "is.false"),
            ("scope", 'in.(a,"b,c")'),
            ("title", "not.like.*x*"),
            ("order", "hlc.desc.nullslast,id"),
            ("limit", "10"),
            ("offset", "5"),
        ]
    )
    assert q.columns == ["id", "title"]
    assert q.params == ["abc", "5", "a", "b,c", "%x%"]
    assert (q.limit, q.offset, len(q.order), len(q.where)) == (10, 5, 2, 5)
    for bad in [
        ("id", "eqabc"),
        ("id", "zz.1"),
        ("id", "is.maybe"),
        ("limit", "-1"),
        ("order", "id.sideways"),
        ("x;drop", "eq.1"),
        ("id", "in.1,2"),
    ]:
        with pytest.raises(QueryError):
            parse_query([bad])


@given(st.text(max_size=30))
def test_object_key_rule_is_ascii_only(key: str) -> None:
    if VALID_OBJECT_KEY.match(key):
        assert key and key.isascii() and not set(key) & set('%#[]{}|\\^~`"<>\t\n')


def test_tus_metadata() -> None:
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    assert parse_metadata(f"bucketName {b64('documents')},objectName {b64('u/d/s')},flag") == {
        "bucketName": "documents",
        "objectName": "u/d/s",
        "flag": "",
    }
