"""Write and verify the hash-chained audit log.

Each entry carries the hash of the previous one, so any edit, deletion, insertion or reordering
breaks the chain from that entry on. Entries are written in the same transaction as the action
they record (an action that rolls back leaves no entry, and an entry never describes an action
that did not happen). Writers are serialised on the single `audit_head` row: on PostgreSQL the
one append statement locks it (FOR UPDATE) before reading the previous hash, on SQLite the first
statement is an UPDATE of it (the database's write lock), so two concurrent requests can never
both append after the same entry. No personal data goes into
`details`: identifiers of records and users only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portal.db.base import utcnow
from portal.db.fast import Prepared
from portal.db.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
BATCH = 5000
"""Entries read per query while verifying (keyset pagination on seq)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a user acting in an organisation (both unknown before login)."""

    user_id: uuid.UUID | None
    """The user, or None for an anonymous or unknown caller."""
    org_id: uuid.UUID | None
    """The organisation the user acted for."""


ANONYMOUS = Actor(None, None)


_encode_str = (
    json.encoder.encode_basestring
)  # the C escaper json.dumps uses with ensure_ascii=False
_encode_details = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _json_str(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def _json_uuid(value: uuid.UUID | None) -> str:
    return "null" if value is None else f'"{value}"'


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor_user_id: uuid.UUID | None,
    actor_org_id: uuid.UUID | None,
    owner_org_id: uuid.UUID | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    outcome: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over a canonical JSON rendering of every field of the entry.

    The rendering is exactly `json.dumps(body, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)` of the fields (UUIDs as strings, `at` as ISO 8601 with microseconds):
    the keys are written in sorted order by hand because that is twice as fast over a million
    entries. tests/portal/test_audit.py checks the two renderings agree on random entries.
    """
    canonical = (
        f'{{"action":{_encode_str(action)},"actor_org_id":{_json_uuid(actor_org_id)},'
        f'"actor_user_id":{_json_uuid(actor_user_id)},'
        f'"at":"{at.isoformat(timespec="microseconds")}",'
        f'"details":{_encode_details(details)},"object_id":{_json_str(object_id)},'
        f'"object_type":{_json_str(object_type)},"outcome":{_encode_str(outcome)},'
        f'"owner_org_id":{_json_uuid(owner_org_id)},"prev_hash":{_encode_str(prev_hash)},'
        f'"seq":{int(seq)}}}'
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def reference_canonical(fields: dict[str, Any]) -> str:
    """The canonical rendering spelled out with json.dumps (the definition; used by tests)."""
    body = dict(fields)
    for key in ("actor_user_id", "actor_org_id", "owner_org_id"):
        body[key] = str(body[key]) if body[key] else None
    body["at"] = body["at"].isoformat(timespec="microseconds")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_CLAIM_ONE = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(seq=AuditHead.seq + 1)
    .returning(AuditHead.seq, AuditHead.hash)
)
_SET_HEAD_HASH = update(AuditHead).where(AuditHead.id == 1).values(hash=bindparam("head_hash"))
_APPEND = insert(AuditEntry)

# PostgreSQL: the whole append in one statement, chained by the server (decision record
# docs/decisions/0001-audit-append-in-one-statement.md). The head row is locked (FOR UPDATE: a
# concurrent appender waits here and then reads the head its predecessor committed), the entry's
# seq and `at` (clock_timestamp(), taken after the lock, so `at` follows seq) are derived from
# it, and the entry's hash is SHA-256 over exactly the canonical text `entry_hash` renders: the
# fields before "at" and between "at" and "prev_hash" come rendered from Python
# (`_canonical_parts`), the server fills in `at` (rendered as `_PG_ROWS` reads it back for
# verification), the previous hash and seq, which are the last two keys. The entry is inserted
# and the head advanced in the same statement. One round trip; the head stays locked from this
# statement to the commit.
_PG_APPEND = Prepared(
    text(
        """
WITH head AS MATERIALIZED (
    SELECT seq + 1 AS seq, hash AS prev_hash, clock_timestamp() AS at
    FROM audit_head WHERE id = 1 FOR UPDATE
), entry AS MATERIALIZED (
    SELECT seq, at, prev_hash, encode(sha256(convert_to(
        CAST(:before_at AS text)
        || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
        || CAST(:after_at AS text) || prev_hash || '","seq":' || seq::text || '}',
        'UTF8')), 'hex') AS hash
    FROM head
), appended AS (
    INSERT INTO audit_entries (seq, at, actor_user_id, actor_org_id, owner_org_id, action,
                               object_type, object_id, outcome, details, prev_hash, hash)
    SELECT seq, at, CAST(:actor_user_id AS uuid), CAST(:actor_org_id AS uuid),
           CAST(:owner_org_id AS uuid), CAST(:action AS varchar), CAST(:object_type AS varchar),
           CAST(:object_id AS varchar), CAST(:outcome AS varchar), CAST(:details AS json),
           prev_hash, hash
    FROM entry
)
UPDATE audit_head SET seq = entry.seq, hash = entry.hash FROM entry WHERE audit_head.id = 1
"""
    )
)


def _canonical_parts(
    *,
    actor_user_id: uuid.UUID | None,
    actor_org_id: uuid.UUID | None,
    owner_org_id: uuid.UUID | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    outcome: str,
    details_json: str,
) -> tuple[str, str]:
    """`entry_hash`'s canonical text around what the server fills in: (up to the opening quote
    of "at", from the end of "at" to the opening quote of "prev_hash"). The server appends the
    previous hash, '","seq":', the seq and '}' (seq and prev_hash are the last keys)."""
    before_at = (
        f'{{"action":{_encode_str(action)},"actor_org_id":{_json_uuid(actor_org_id)},'
        f'"actor_user_id":{_json_uuid(actor_user_id)},"at":"'
    )
    after_at = (
        f'+00:00","details":{details_json},"object_id":{_json_str(object_id)},'
        f'"object_type":{_json_str(object_type)},"outcome":{_encode_str(outcome)},'
        f'"owner_org_id":{_json_uuid(owner_org_id)},"prev_hash":"'
    )
    return before_at, after_at


async def record(
    db: AsyncSession,
    action: str,
    *,
    actor: Actor = ANONYMOUS,
    outcome: str = "ok",
    owner_org_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: str | uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction (statements built once, no ORM object: this
    runs on every audited read). On PostgreSQL one statement (`_PG_APPEND`); on SQLite the head
    is claimed, the entry hashed here, inserted and the head's hash set."""
    oid = str(object_id) if object_id is not None else None
    if db.get_bind().dialect.name == "postgresql":
        details_json = _encode_details(details or {})
        before_at, after_at = _canonical_parts(
            actor_user_id=actor.user_id, actor_org_id=actor.org_id, owner_org_id=owner_org_id,
            action=action, object_type=object_type, object_id=oid, outcome=outcome,
            details_json=details_json,
        )  # fmt: skip
        conn = await db.connection()  # a Core statement: no ORM execution machinery
        await _PG_APPEND.run(
            conn,
            {
                "before_at": before_at,
                "after_at": after_at,
                "actor_user_id": actor.user_id,
                "actor_org_id": actor.org_id,
                "owner_org_id": owner_org_id,
                "action": action,
                "object_type": object_type,
                "object_id": oid,
                "outcome": outcome,
                "details": details_json,
            },
        )
        return
    seq, prev_hash = (await db.execute(_CLAIM_ONE)).one()
    fields: dict[str, Any] = {
        "seq": seq,
        "at": utcnow(),
        "actor_user_id": actor.user_id,
        "actor_org_id": actor.org_id,
        "owner_org_id": owner_org_id,
        "action": action,
        "object_type": object_type,
        "object_id": oid,
        "outcome": outcome,
        "details": details or {},
        "prev_hash": prev_hash,
    }
    digest = entry_hash(**fields)
    fields["hash"] = digest
    await db.execute(_APPEND, fields)
    await db.execute(_SET_HEAD_HASH, {"head_hash": digest})


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One entry for `record_many` (the arguments of `record`)."""

    action: str
    """What was done."""
    actor: Actor = ANONYMOUS
    """Who did it."""
    outcome: str = "ok"
    """ok, denied, not_found, ..."""
    owner_org_id: uuid.UUID | None = None
    """The organisation that owns the object."""
    object_type: str | None = None
    """The kind of object."""
    object_id: str | uuid.UUID | None = None
    """The object."""
    details: dict[str, Any] | None = None
    """Identifiers only, never personal data."""


# PostgreSQL: several entries in one statement, chained by the server as `_PG_APPEND` chains
# one (decision record docs/decisions/0001-audit-append-in-one-statement.md, "record_many"). The
# head row is locked first; the entries come as parallel arrays (the canonical text around `at`
# rendered by `_canonical_parts`, the columns as text) numbered 1..n; a recursive CTE walks them
# in order, each entry's seq the previous one's plus one and its hash SHA-256 over its canonical
# text with the previous entry's hash; every entry of the batch has the same `at`
# (clock_timestamp() after the lock). The entries are inserted and the head moved to the last
# one in the same statement.
_PG_APPEND_MANY = Prepared(
    text(
        """
WITH RECURSIVE head AS MATERIALIZED (
    SELECT seq, hash, clock_timestamp() AS at FROM audit_head WHERE id = 1 FOR UPDATE
), item AS MATERIALIZED (
    SELECT * FROM unnest(
        CAST(:before_at AS text[]), CAST(:after_at AS text[]), CAST(:actor_user_id AS text[]),
        CAST(:actor_org_id AS text[]), CAST(:owner_org_id AS text[]), CAST(:action AS text[]),
        CAST(:object_type AS text[]), CAST(:object_id AS text[]), CAST(:outcome AS text[]),
        CAST(:details AS text[])
    ) WITH ORDINALITY AS i(before_at, after_at, actor_user_id, actor_org_id, owner_org_id,
                           action, object_type, object_id, outcome, details, n)
), chain(n, seq, at, prev_hash, hash) AS (
    SELECT CAST(0 AS bigint), seq, at, CAST(NULL AS varchar), CAST(hash AS varchar) FROM head
    UNION ALL
    SELECT item.n, chain.seq + 1, chain.at, chain.hash, CAST(encode(sha256(convert_to(
        item.before_at || to_char(chain.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
        || item.after_at || chain.hash || '","seq":' || (chain.seq + 1)::text || '}',
        'UTF8')), 'hex') AS varchar)
    FROM chain JOIN item ON item.n = chain.n + 1
), appended AS (
    INSERT INTO audit_entries (seq, at, actor_user_id, actor_org_id, owner_org_id, action,
                               object_type, object_id, outcome, details, prev_hash, hash)
    SELECT chain.seq, chain.at, CAST(item.actor_user_id AS uuid),
           CAST(item.actor_org_id AS uuid), CAST(item.owner_org_id AS uuid), item.action,
           item.object_type, item.object_id, item.outcome, CAST(item.details AS json),
           chain.prev_hash, chain.hash
    FROM chain JOIN item ON item.n = chain.n
)
UPDATE audit_head SET seq = last.seq, hash = last.hash
FROM (SELECT seq, hash FROM chain ORDER BY n DESC LIMIT 1) AS last
WHERE audit_head.id = 1
"""
    )
)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


async def _record_many_pg(db: AsyncSession, entries: Sequence[NewEntry]) -> None:
    columns: dict[str, list[str | None]] = {
        key: []
        for key in (
            "before_at", "after_at", "actor_user_id", "actor_org_id", "owner_org_id", "action",
            "object_type", "object_id", "outcome", "details",
        )
    }  # fmt: skip
    for e in entries:
        oid = _str_or_none(e.object_id)
        details_json = _encode_details(e.details or {})
        before_at, after_at = _canonical_parts(
            actor_user_id=e.actor.user_id, actor_org_id=e.actor.org_id,
            owner_org_id=e.owner_org_id, action=e.action, object_type=e.object_type,
            object_id=oid, outcome=e.outcome, details_json=details_json,
        )  # fmt: skip
        columns["before_at"].append(before_at)
        columns["after_at"].append(after_at)
        columns["actor_user_id"].append(_str_or_none(e.actor.user_id))
        columns["actor_org_id"].append(_str_or_none(e.actor.org_id))
        columns["owner_org_id"].append(_str_or_none(e.owner_org_id))
        columns["action"].append(e.action)
        columns["object_type"].append(e.object_type)
        columns["object_id"].append(oid)
        columns["outcome"].append(e.outcome)
        columns["details"].append(details_json)
    await _PG_APPEND_MANY.run(await db.connection(), columns)


async def record_many(db: AsyncSession, entries: Sequence[NewEntry]) -> None:
    """Append several entries in the caller's transaction, in order (the same chain `record`
    would write one by one: each entry still hashes its own fields and its predecessor's hash).
    On PostgreSQL one statement (`_PG_APPEND_MANY`); on SQLite one claim of the head, one
    multi-row insert and one head update."""
    if not entries:
        return
    if db.get_bind().dialect.name == "postgresql":
        await _record_many_pg(db, entries)
        return
    claimed = await db.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + len(entries))
        .returning(AuditHead.seq, AuditHead.hash)
    )
    last_seq, prev_hash = claimed.one()
    rows: list[dict[str, Any]] = []
    for seq, e in enumerate(entries, last_seq - len(entries) + 1):
        fields: dict[str, Any] = {
            "seq": seq,
            "at": utcnow(),
            "actor_user_id": e.actor.user_id,
            "actor_org_id": e.actor.org_id,
            "owner_org_id": e.owner_org_id,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": str(e.object_id) if e.object_id is not None else None,
            "outcome": e.outcome,
            "details": e.details or {},
            "prev_hash": prev_hash,
        }
        prev_hash = entry_hash(**fields)
        rows.append({**fields, "hash": prev_hash})
    await db.execute(insert(AuditEntry), rows)
    await db.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev_hash))


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking the whole chain."""

    entries: int
    """How many entries were checked."""
    first_bad_seq: int | None
    """The first entry that does not verify, or None when the chain is intact."""
    problem: str | None
    """What is wrong with that entry."""

    @property
    def ok(self) -> bool:
        """True when every entry verifies and the head matches the last entry."""
        return self.first_bad_seq is None


_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor_user_id,
    AuditEntry.actor_org_id,
    AuditEntry.owner_org_id,
    AuditEntry.action,
    AuditEntry.object_type,
    AuditEntry.object_id,
    AuditEntry.outcome,
    AuditEntry.details,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)

PG_BATCH = 20_000
"""Entries read per query on PostgreSQL (raw driver rows of short strings: ~10 MB a batch)."""

# Every column as the text its canonical rendering needs, so no Python object is built per field:
# PostgreSQL renders a uuid exactly as str(uuid.UUID) does, and `at` (timestamptz) in UTC exactly as
# datetime.isoformat(timespec="microseconds") does for years 1000-9999, less the "+00:00" suffix.
# `details` is a `json` column: its text is what was inserted, re-rendered canonically below.
_PG_ROWS = (
    "SELECT seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "actor_user_id::text, actor_org_id::text, owner_org_id::text, action, object_type, "
    "object_id, outcome, details::text, prev_hash, hash "
    "FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
)
_PG_ROWS_UP_TO = _PG_ROWS.replace("WHERE seq > $1", "WHERE seq > $1 AND seq <= $3")

_DETAILS_CACHE_MAX = 100_000
"""Distinct `details` texts whose canonical rendering is remembered during one verification
(most entries share a handful of shapes such as {"version": 2}; the cache is bounded)."""


_NULL = "null"


def _quote(uuid_text: str) -> str:
    return '"' + uuid_text + '"'  # a UUID's text needs no escaping


@dataclass(slots=True)
class _Progress:
    """Where a verification stands: the next seq expected and the hash it must link to."""

    expected_seq: int
    prev: str
    count: int


def _check_text_rows(
    rows: Sequence[Sequence[Any]], progress: _Progress, details_cache: dict[str, str]
) -> ChainReport | None:
    """Check raw text rows in seq order (see _PG_ROWS); advance `progress`; name the first bad one.

    The canonical string is the one `entry_hash` builds, from text columns: `at` without its
    "+00:00", UUIDs as text, `details` as JSON text. Same bytes, so the same SHA-256.
    """
    sha256, enc = hashlib.sha256, _encode_str
    expected_seq, prev, count = progress.expected_seq, progress.prev, progress.count
    for seq, at, user, org, owner, action, otype, oid, outcome, details, prev_hash, digest in rows:
        count += 1
        if seq != expected_seq:
            return ChainReport(count, expected_seq, f"entry {expected_seq} is missing")
        if prev_hash != prev:
            return ChainReport(count, seq, "does not link to the previous entry")
        rendered = details_cache.get(details)
        if rendered is None:
            rendered = _encode_details(json.loads(details))
            if len(details_cache) >= _DETAILS_CACHE_MAX:
                details_cache.clear()
            details_cache[details] = rendered
        canonical = (
            f'{{"action":{enc(action)},"actor_org_id":{_NULL if org is None else _quote(org)},'
            f'"actor_user_id":{_NULL if user is None else _quote(user)},'
            f'"at":"{at}+00:00","details":{rendered},'
            f'"object_id":{_NULL if oid is None else enc(oid)},'
            f'"object_type":{_NULL if otype is None else enc(otype)},"outcome":{enc(outcome)},'
            f'"owner_org_id":{_NULL if owner is None else _quote(owner)},'
            f'"prev_hash":"{prev}","seq":{seq}}}'
        )
        if sha256(canonical.encode()).hexdigest() != digest:
            return ChainReport(count, seq, "content does not match its hash")
        prev, expected_seq = digest, seq + 1
    progress.expected_seq, progress.prev, progress.count = expected_seq, prev, count
    return None


async def _verify_postgres(db: AsyncSession) -> ChainReport:
    """verify_chain on PostgreSQL: raw asyncpg rows of text, in the session's transaction."""
    connection = await db.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    progress = _Progress(1, GENESIS_HASH, 0)
    problem = await _check_pg(raw, progress)
    if problem is not None:
        return problem
    return await _check_head(db, progress.expected_seq, progress.prev, progress.count)


async def _check_pg(raw: Any, progress: _Progress, up_to: int | None = None) -> ChainReport | None:
    """Check the entries from `progress` on (through `up_to`), a batch at a time."""
    if up_to is None:
        statement = await raw.prepare(_PG_ROWS)
        args: tuple[int, ...] = ()
    else:
        statement = await raw.prepare(_PG_ROWS_UP_TO)
        args = (up_to,)
    cache: dict[str, str] = {}
    rows = await statement.fetch(progress.expected_seq - 1, PG_BATCH, *args)
    while rows:
        # The server reads the next batch while this one is hashed (one query in flight; it is
        # awaited even when this batch is bad, so the connection is never left mid-query).
        following = asyncio.ensure_future(statement.fetch(rows[-1][0], PG_BATCH, *args))
        try:
            problem = _check_text_rows(rows, progress, cache)
        finally:
            rows = await following
        if problem is not None:
            return problem
    return None


PARALLEL_MIN = 200_000
"""From this many entries, `verify_chain(db, parallel=True)` (what `jourpost audit verify` runs)
checks the second half of the chain in a second process on PostgreSQL."""

_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?")


@dataclass(frozen=True, slots=True)
class _Half:
    """What the second process found in its part of the chain (the entries after `after`)."""

    count: int
    """Entries read."""
    first_seq: int | None
    """Its first entry (None: there was none)."""
    first_prev: str
    """Its first entry's stored prev_hash, to be checked against the first half's last hash."""
    problem: ChainReport | None
    """The first problem in its part (`entries` counted from its own first entry)."""
    expected_seq: int
    """The seq after its last entry."""
    prev: str
    """Its last entry's hash."""


async def _second_half(url: str, snapshot: str, after: int) -> _Half:
    from portal.db.engine import make_engine

    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            first = await raw.fetchrow(
                "SELECT seq, prev_hash FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT 1",
                after,
            )
            if first is None:
                return _Half(0, None, "", None, after + 1, "")
            # Its own first link is taken as stored; the caller checks it against the first half.
            progress = _Progress(after + 1, first["prev_hash"], 0)
            problem = await _check_pg(raw, progress)
            return _Half(
                progress.count if problem is None else problem.entries,
                first["seq"],
                first["prev_hash"],
                problem,
                progress.expected_seq,
                progress.prev,
            )
    finally:
        await engine.dispose()


def _second_half_process(url: str, snapshot: str, after: int) -> _Half:
    """Entry point of the second process."""
    return asyncio.run(_second_half(url, snapshot, after))


async def _verify_postgres_parallel(db: AsyncSession) -> ChainReport:
    """verify_chain over one snapshot of the committed chain in two processes: this one checks
    entries 1..m on its own connection, a second process m+1.. on another connection importing
    the same snapshot (`pg_export_snapshot`); the halves are joined where entry m+1's prev_hash
    must be entry m's hash, so the report is the one the sequential check gives."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    engine = db.get_bind().engine
    url = engine.url.render_as_string(hide_password=False)
    async with AsyncEngine(engine).connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        snapshot = str((await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one())
        if not _SNAPSHOT_ID.fullmatch(snapshot):
            raise RuntimeError("unexpected snapshot id from PostgreSQL")
        head = (await conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1"))).one()
        middle = head.seq // 2
        raw = (await conn.get_raw_connection()).driver_connection
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            second = loop.run_in_executor(pool, _second_half_process, url, snapshot, middle)
            mine = _Progress(1, GENESIS_HASH, 0)
            try:
                problem = await _check_pg(raw, mine, up_to=middle)
            finally:
                half = await second
    if problem is not None:
        return problem
    if half.first_seq is not None:
        if mine.expected_seq <= middle:  # the first half ends early: its next entry is missing
            return ChainReport(
                mine.count + 1, mine.expected_seq, f"entry {mine.expected_seq} is missing"
            )
        if half.problem is not None and half.problem.entries == 1 and half.first_seq != middle + 1:
            return ChainReport(mine.count + 1, middle + 1, half.problem.problem)
        if half.first_prev != mine.prev:
            return ChainReport(mine.count + 1, middle + 1, "does not link to the previous entry")
        if half.problem is not None:
            return ChainReport(
                mine.count + half.problem.entries, half.problem.first_bad_seq, half.problem.problem
            )
        mine = _Progress(half.expected_seq, half.prev, mine.count + half.count)
    if head.seq != mine.expected_seq - 1 or head.hash != mine.prev:
        return ChainReport(
            mine.count, mine.expected_seq - 1 or 1, "the chain head does not match the last entry"
        )
    return ChainReport(mine.count, None, None)


async def _entries(db: AsyncSession, batch: int = BATCH) -> AsyncIterator[Row[Any]]:
    """Every entry in seq order as plain rows (no ORM objects: a million of them add up)."""
    last = 0
    while True:
        rows = (
            await db.execute(
                select(*_COLUMNS).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq


async def _check_head(db: AsyncSession, expected_seq: int, prev: str, count: int) -> ChainReport:
    head = (await db.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1"))).one()
    if head.seq != expected_seq - 1 or head.hash != prev:
        return ChainReport(
            count, expected_seq - 1 or 1, "the chain head does not match the last entry"
        )
    return ChainReport(count, None, None)


async def verify_chain(db: AsyncSession, *, parallel: bool = False) -> ChainReport:
    """Recompute every hash in order; name the first entry that was edited, removed or inserted.

    The check runs in the session's transaction (it sees what the session sees). With
    `parallel`, a chain of PARALLEL_MIN entries or more on PostgreSQL is checked instead in two
    processes over one snapshot of the committed chain (the command line's `audit verify`)."""
    if db.get_bind().dialect.name == "postgresql":
        if parallel:
            head = (await db.execute(text("SELECT seq FROM audit_head WHERE id = 1"))).scalar()
            if (head or 0) >= PARALLEL_MIN:
                return await _verify_postgres_parallel(db)
        return await _verify_postgres(db)
    return await verify_chain_portable(db)


async def verify_chain_portable(db: AsyncSession) -> ChainReport:
    """verify_chain through SQLAlchemy rows (SQLite; on PostgreSQL the benchmark's baseline)."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    async for e in _entries(db):
        count += 1
        if e.seq != expected_seq:
            return ChainReport(count, expected_seq, f"entry {expected_seq} is missing")
        if e.prev_hash != prev:
            return ChainReport(count, e.seq, "does not link to the previous entry")
        recomputed = entry_hash(
            seq=e.seq,
            at=e.at,
            actor_user_id=e.actor_user_id,
            actor_org_id=e.actor_org_id,
            owner_org_id=e.owner_org_id,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            outcome=e.outcome,
            details=e.details,
            prev_hash=e.prev_hash,
        )
        if recomputed != e.hash:
            return ChainReport(count, e.seq, "content does not match its hash")
        prev, expected_seq = e.hash, e.seq + 1
    return await _check_head(db, expected_seq, prev, count)
