"""Fixtures for the Supabase side of sync: one PostgreSQL per test session (per xdist worker),
a fresh migrated database per test, and a gateway on top of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.supabase_gateway import Gateway, GatewayConfig, PgCluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database with the Supabase scaffolding and sync/migrations applied."""
    name = pg_cluster.create_database()
    yield name
    pg_cluster.drop_database(name)


@pytest.fixture
def gateway(pg_cluster: PgCluster, pg_database: str) -> Iterator[Gateway]:
    gw = Gateway(
        GatewayConfig(
            database_uri=pg_cluster.uri(pg_database, "authenticator"),
            admin_uri=pg_cluster.uri(pg_database),
        )
    )
    gw.start()
    yield gw
    gw.stop()
    assert gw.internal_errors == [], "\n".join(gw.internal_errors)


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
    user = sign_in(gateway, "alice@example.com")
    yield user
    user.client.close()


@pytest.fixture
def bob(gateway: Gateway) -> Iterator[SignedIn]:
    user = sign_in(gateway, "bob@example.com")
    yield user
    user.client.close()
