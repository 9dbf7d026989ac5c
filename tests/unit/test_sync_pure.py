"""Pure parts of sync: the hybrid logical clock, version order and ids, the merge rules, the
share-URL cache, connectivity change detection, and the checks on session input."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.errors import ValidationFailed
from sync.conflicts import LocalState, PullAction, PushResolution, conflict_name, decide_pull, decide_push
from sync.connectivity import ConnectivityWatch
from sync.share import ShareCache
from sync.signin import check_url, jwt_claims
from sync.versions import (
    COUNTER_BITS,
    Version,
    chunk_uuid,
    chunks_change_id,
    document_change_id,
    next_hlc,
    storage_key,
)

devices = st.sampled_from(["a", "b", "B", "device-1", "é"])


@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**55)), min_size=1, max_size=50))
def test_hlc_never_goes_backwards_and_stays_above_what_it_saw(steps: list[tuple[int, int]]) -> None:
    last = 0
    for wall_ms, seen in steps:  # the wall clock may jump back; seen values come from others
        value = next_hlc(wall_ms, last, seen)
        assert value > last and value > seen and value >= wall_ms << COUNTER_BITS
        last = value


@given(st.integers(0, 2**50), devices, st.integers(0, 2**50), devices)
def test_version_order_is_total_and_matches_the_server(h1: int, d1: str, h2: int, d2: str) -> None:
    a, b = Version(h1, d1), Version(h2, d2)
    if a == b:
        assert not a.newer_than(b) and not b.newer_than(a)
    else:
        assert a.newer_than(b) != b.newer_than(a)
    # the server compares (hlc, device COLLATE "C"): bytewise on UTF-8
    assert a.newer_than(b) == ((h1, d1.encode()) > (h2, d2.encode()))
    assert a.newer_than(None)


def test_ids_are_deterministic_per_version() -> None:
    doc, v = str(uuid.uuid4()), Version(42 << 16, "dev")
    assert document_change_id(doc, v) == document_change_id(doc, v)
    assert document_change_id(doc, v) != document_change_id(doc, Version(43 << 16, "dev"))
    assert chunks_change_id(doc, v, 0) != chunks_change_id(doc, v, 1)
    assert len({chunk_uuid(doc, v, i) for i in range(100)}) == 100


def test_storage_keys_are_ascii_and_content_addressed() -> None:
    user, doc, sha = str(uuid.uuid4()), str(uuid.uuid4()), "ab" * 32
    key = storage_key(user, doc, sha)
    assert key == f"{user}/{doc}/{sha}" and key.isascii()
    for bad in ((user, "../etc", sha), ("ünïcode", doc, sha), (user, doc, "Z" * 64), (user, doc, "ab")):
        with pytest.raises(ValueError):
            storage_key(*bad)


def _row(hlc: int, device: str = "b", **fields: object) -> dict[str, object]:
    return {"id": "x", "hlc": hlc, "origin_device": device, "deleted": False, "sha256": "s1", **fields}


def _local(**kw: object) -> LocalState:
    base = {"exists": True, "indexed_sha256": "s0", "chunk_count": 1, "base": Version(1, "a"), "pending": False}
    return LocalState(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "local", "action"),
    [
        (_row(5), _local(pending=True), PullAction.SKIP_PENDING),
        (_row(1, "a"), _local(), PullAction.SKIP_SAME),
        (_row(0, "z"), _local(), PullAction.SKIP_STALE),
        (_row(5, deleted=True), _local(), PullAction.DELETE_LOCAL),
        (_row(5, deleted=True), _local(exists=False), PullAction.RECORD_BASE),
        (_row(5, sha256="s0"), _local(), PullAction.APPLY_META),
        (_row(5), _local(), PullAction.APPLY_CONTENT),
        (_row(5), _local(exists=False, base=None), PullAction.APPLY_CONTENT),
    ],
)
def test_pull_decisions(row: dict[str, object], local: LocalState, action: PullAction) -> None:
    assert decide_pull(row, local) is action


OURS = {"sha256": "ours", "title": "t", "filename": "f.txt", "scope": "default", "mime": "text/plain", "deleted": False}


@pytest.mark.parametrize(
    ("status", "ours", "current", "replaced", "resolution"),
    [
        ("accepted", OURS, OURS, None, PushResolution.DONE),
        ("accepted", OURS, OURS, {**OURS, "sha256": "theirs", "origin_device": "B"}, PushResolution.COPY_REPLACED),
        ("accepted", OURS, OURS, {**OURS, "sha256": "old", "origin_device": "A"}, PushResolution.DONE),  # own
        ("accepted", OURS, OURS, {**OURS, "origin_device": "B"}, PushResolution.DONE),  # same edit twice
        ("accepted", OURS, OURS, {**OURS, "deleted": True, "origin_device": "B"}, PushResolution.DONE),
        ("accepted", {**OURS, "deleted": True}, OURS, {**OURS, "origin_device": "B"}, PushResolution.COPY_REPLACED),
        ("conflict", OURS, {**OURS, "sha256": "theirs"}, None, PushResolution.COPY_LOCAL),
        ("conflict", OURS, {**OURS, "filename": "renamed.txt"}, None, PushResolution.COPY_LOCAL),
        ("conflict", OURS, {**OURS, "deleted": True}, None, PushResolution.COPY_LOCAL),  # edit survives a delete
        ("conflict", {**OURS, "deleted": True}, {**OURS, "sha256": "theirs"}, None, PushResolution.TAKE_REMOTE),
        ("conflict", OURS, dict(OURS), None, PushResolution.TAKE_REMOTE),
        ("rejected", OURS, None, None, PushResolution.DEAD_LETTER),
    ],
)
def test_push_resolutions(
    status: str, ours: dict[str, object], current: dict[str, object] | None, replaced: dict[str, object] | None,
    resolution: PushResolution,
) -> None:  # fmt: skip
    assert decide_push(status, ours, "A", current, replaced) is resolution


@given(
    st.sampled_from(["accepted", "conflict"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(["s1", "s2"]),
    st.sampled_from(["A", "B"]),
)
def test_no_version_is_silently_dropped(
    status: str, ours_deleted: bool, theirs_deleted: bool, ours_sha: str, theirs_sha: str, their_device: str
) -> None:
    """Whatever the outcome, a live version that differs from the winner is kept (as a copy),
    except our own earlier version, which the pushed one knowingly replaced."""
    ours = {**OURS, "sha256": ours_sha, "deleted": ours_deleted}
    theirs = {**OURS, "sha256": theirs_sha, "deleted": theirs_deleted, "origin_device": their_device}
    if status == "accepted":
        r = decide_push(status, ours, "A", ours, theirs)
        loser, winner, kept = theirs, ours, r is PushResolution.COPY_REPLACED
        own = their_device == "A"
    else:
        r = decide_push(status, ours, "A", theirs, None)
        loser, winner, kept = ours, theirs, r is PushResolution.COPY_LOCAL
        own = False
    distinct = not loser["deleted"] and (loser["sha256"] != winner["sha256"] or winner["deleted"])
    if distinct and not own:
        assert kept


def test_conflict_names_keep_the_extension() -> None:
    when = dt.datetime(2025, 1, 31, 14, 32, tzinfo=dt.UTC)
    assert conflict_name("report.pdf", "laptop", when) == "report (conflicted copy 2025-01-31 1432 laptop).pdf"
    assert conflict_name("README", "pc", when) == "README (conflicted copy 2025-01-31 1432 pc)"
    assert conflict_name(".bashrc", "pc", when) == ".bashrc (conflicted copy 2025-01-31 1432 pc)"


def test_share_cache_reuses_below_half_the_lifetime_and_the_ttl() -> None:
    now = [1000.0]
    cache = ShareCache(ttl_s=300, clock=lambda: now[0])
    cache.put("d", "k1", 3600, "url-1")
    now[0] += 299
    assert cache.get("d", "k1", 3600).url == "url-1"  # type: ignore[union-attr]
    now[0] += 2
    assert cache.get("d", "k1", 3600) is None  # past the TTL: re-sign
    cache.put("d", "k1", 60, "url-2")
    now[0] += 29
    assert cache.get("d", "k1", 60) is not None
    now[0] += 2
    assert cache.get("d", "k1", 60) is None  # a 60 s URL is reused for 30 s at most
    cache.put("d", "k1", 60, "url-3")
    assert cache.get("d", "k2", 60) is None  # the document's file changed
    assert cache.get("d", "k1", 120) is None  # another lifetime is another URL


def test_connectivity_watch_reports_changes_only() -> None:
    states = iter([frozenset({("eth0", "10.0.0.2")}), frozenset({("eth0", "10.0.0.2")}), frozenset()])
    clock = [0.0]
    watch = ConnectivityWatch(5.0, probe=lambda: next(states), clock=lambda: clock[0])
    assert watch.poll() is False  # first look only records
    assert watch.poll() is False  # rate limited: no probe
    clock[0] = 6
    assert watch.poll() is False  # same interfaces
    clock[0] = 12
    assert watch.poll() is True  # cable pulled


@pytest.mark.parametrize(
    "url",
    ["ftp://x.supabase.co", "http://x.supabase.co", "https://u:p@x.supabase.co", "https://x.supabase.co/rest",
     "https://x.supabase.co?a=1", "", "https://"],
)  # fmt: skip
def test_bad_project_urls(url: str) -> None:
    with pytest.raises(ValidationFailed):
        check_url(url)


def test_good_project_urls() -> None:
    assert check_url("https://abc.supabase.co/") == "https://abc.supabase.co"
    assert check_url("http://127.0.0.1:54321") == "http://127.0.0.1:54321"
    assert check_url("http://localhost:54321") == "http://localhost:54321"


def test_jwt_claims_are_read_but_garbage_is_refused() -> None:
    token = "e30." + "eyJzdWIiOiJ4IiwiZXhwIjoxfQ" + ".sig"
    assert jwt_claims(token) == {"sub": "x", "exp": 1}
    for bad in ("abc", "a.!!!.c", "a.WzFd.c"):
        with pytest.raises(ValidationFailed):
            jwt_claims(bad)
