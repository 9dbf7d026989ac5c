"""Fixtures for the Supabase side of sync: one PostgreSQL per test session (per xdist worker),
a fresh migrated database per test module, and a gateway on top of it (one per module, reset
between tests). Tests isolate themselves by creating their own users: row-level security is
exactly what keeps them apart, as it keeps real users apart on Supabase."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.supabase_gateway import Gateway, GatewayConfig, PgCluster
from tests.sync.devices import Device, start_devices
from tests.sync.helpers import SqlUser, add_user


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database (per module) with the Supabase scaffolding and sync/migrations."""
    name = pg_cluster.create_database()
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def module_gateway(pg_cluster: PgCluster, pg_database: str) -> Iterator[Gateway]:
    gw = Gateway(
        GatewayConfig(
            database_uri=pg_cluster.uri(pg_database, "authenticator"),
            admin_uri=pg_cluster.uri(pg_database),
        )
    )
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def gateway(module_gateway: Gateway) -> Iterator[Gateway]:
    """The module's gateway with no faults and a true clock; fails the test on a gateway bug."""
    module_gateway.faults.reset()
    module_gateway.clock.offset_s = 0.0
    yield module_gateway
    errors = list(module_gateway.internal_errors)
    module_gateway.internal_errors.clear()
    module_gateway.faults.reset()
    assert errors == [], "\n".join(errors)


@dataclass
class SignedIn:
    """A user signed in through the gateway's Auth API, with an httpx client carrying the token."""

    user_id: str
    email: str
    password: str
    session: dict[str, object]
    client: httpx.Client


def sign_in(gw: Gateway, email: str, password: str = "correct horse battery") -> SignedIn:
    user_id = gw.create_user(email, password)
    with httpx.Client(base_url=gw.url, headers={"apikey": gw.anon_key}) as anon:
        response = anon.post(
            "/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": email, "password": password},
        )
    response.raise_for_status()
    session = response.json()
    client = httpx.Client(
        base_url=gw.url,
        headers={"apikey": gw.anon_key, "Authorization": f"Bearer {session['access_token']}"},
        timeout=30,
    )
    return SignedIn(user_id, email, password, session, client)


@pytest.fixture
def alice(gateway: Gateway) -> Iterator[SignedIn]:
    user = sign_in(gateway, f"alice-{uuid.uuid4().hex[:8]}@example.com")
    yield user
    user.client.close()


@pytest.fixture
def bob(gateway: Gateway) -> Iterator[SignedIn]:
    user = sign_in(gateway, f"bob-{uuid.uuid4().hex[:8]}@example.com")
    yield user
    user.client.close()


@pytest.fixture
def sql_users(pg_cluster: PgCluster, pg_database: str) -> Iterator[Callable[[], SqlUser]]:
    """Factory of users talking SQL directly, as PostgREST would (role + jwt claims)."""
    conns: list[psycopg.Connection] = []

    def make() -> SqlUser:
        user_id = add_user(pg_cluster, pg_database)
        conn = pg_cluster.connect(pg_database, user="authenticator", autocommit=True)
        conns.append(conn)
        return SqlUser(conn, user_id)

    yield make
    for conn in conns:
        conn.close()


# -- local sidecars ----------------------------------------------------------------------------
@dataclass
class Account:
    email: str
    password: str
    user_id: str


@pytest.fixture
def account(gateway: Gateway) -> Account:
    email = f"sync-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery"
    return Account(email, password, gateway.create_user(email, password))


@pytest.fixture
def admin_query(pg_cluster: PgCluster, pg_database: str) -> Iterator[Callable[..., list[tuple[object, ...]]]]:
    conn = pg_cluster.connect(pg_database, autocommit=True)

    def query(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        cur = conn.execute(sql, params)
        return list(cur.fetchall()) if cur.description is not None else []

    yield query
    conn.close()


@pytest.fixture
def device_factory(tmp_path: Path) -> Iterator[Callable[..., Device]]:
    started: list[Device] = []

    def make(name: str, **settings: object) -> Device:
        dev = Device(tmp_path, name, dict(settings))
        started.append(dev)
        return dev.start()

    yield make
    for dev in started:
        dev.stop()


@pytest.fixture
def pair(gateway: Gateway, account: Account, device_factory: Callable[..., Device]) -> tuple[Device, Device]:
    """Two devices of the same user, both signed in (no sync run yet)."""
    a, b = start_devices(device_factory, "a", "b")
    for dev in (a, b):
        dev.sign_in(gateway, account.email, account.password)
    return a, b
