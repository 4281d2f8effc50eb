"""The records interface: the types every record feature's `records.py` speaks.

A record feature (advisories, reports, decisions, rosters) owns its tables, its visibility rule,
its decryption and its Swedish labels. Readers that span features (archive, retention, log
review, statistics, lookup, home) never import another feature's models; they call that
feature's `records.py`, which answers in these types. Each `records.py` module satisfies
`RecordSource`:

    KIND, LABEL                          "advisory", "Avisering"
    search(db, org_id, is_jour=, since=, until=, pnr_index=, after=, limit=) -> list[Hit]
                                         newest first by (date, id); after a key, at most limit
    count(db, org_id, is_jour=, since=, until=, pnr_index=) -> int   how many `search` finds
    holding(db, record_id) -> Holding | None       owner and the archives that hold it
    describe(db, vault, record_id) -> Record | None  everything shown and exported, decrypted

and, for retention (the `# --- retention, log review, statistics ---` section):

    retention_rows(org_id) -> Anchored             id, anchor, busy of every record, as SQL
    lifecycles(db, ids) -> list[Lifecycle]         owner, anchor date, in progress, object keys
                                         (any number of ids: one statement per `IN_CHUNK`)
    lifecycle(db, record_id) -> Lifecycle | None
    persons_named_many(db, vault, ids) -> dict[id, list[str]]   personnummer each names (the
                                         research-sample exemption: one statement per
                                         `IN_CHUNK` ids)
    persons_named(db, vault, record_id) -> list[str]   the same for one record
    cull(db, record_id)                             delete its rows (the caller deletes objects)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal import paging
from portal.paging import Key
from portal.pii import Vault
from storage import StoredObject

Ts = TypeVarTuple("Ts")
R = TypeVar("R")
"""A record feature's row type."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    kind: str
    """advisory | report | decision | roster."""
    id: uuid.UUID
    """The record."""
    title: str
    """Swedish description without personal data."""
    date: datetime
    """The record's date (created, occurred, or oral decision)."""
    status: str
    """Short status."""
    unit_id: uuid.UUID | None = None
    """The unit (functional mailbox) the record was sent from or addressed to, when it has one."""
    unit: str = ""
    """That unit's name (filled in by the archive's search)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """Who owns a record and whose archives hold it (the feature's one visibility rule)."""

    owner_org_id: uuid.UUID
    """The organisation that owns it (the sending municipality, or the jour for its own)."""
    holders: frozenset[uuid.UUID]
    """Every organisation whose archive holds it."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of a record in the object store."""

    name: str
    """File name shown and used in exports."""
    content_type: str
    """MIME type."""
    stored: StoredObject
    """How to read it back."""
    attachment_id: uuid.UUID | None = None
    """The attachment row (None for a signed decision)."""


@dataclass(frozen=True, slots=True)
class Person:
    """A person a record is about, kept apart for the export (record.xml has an element each)."""

    label: str
    """The label of the fact that shows this person on the record page ("Person 1")."""
    name: str
    """Name as recorded ("" when none)."""
    personal_identity_number: str | None
    """Personnummer or samordningsnummer; None when the identity is unknown."""


@dataclass(slots=True)
class Record:
    """Everything the archive shows and exports about one record."""

    kind: str
    """advisory | report | decision | roster."""
    id: uuid.UUID
    """Its id."""
    owner_org_id: uuid.UUID
    """The organisation that owns it (the sending municipality, or the jour for its own)."""
    title: str
    """Swedish title."""
    date: datetime
    """Its date."""
    created_at: datetime
    """When it was drawn up in Jourpost (upprättad)."""
    facts: list[tuple[str, str]]
    """Content as label/value pairs (decrypted)."""
    versions: list[tuple[str, datetime, str]]
    """(description, when, by whom), labelled as the feature's own pages label them."""
    receipts: list[tuple[str, datetime, str]]
    """(what, when, who): acknowledgements, reads, deliveries."""
    files: list[StoredFile] = field(default_factory=list)
    """Attachments and the signed PDF."""
    signed: StoredFile | None = None
    """The signed PDF of a decision."""
    persons: list[Person] = field(default_factory=list)
    """The persons the record is about (also shown, as label/value, among the facts)."""


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """What retention knows of a record: its owner, the date its retention time runs from,
    whether it is still in progress, and its files."""

    record_id: uuid.UUID
    """The record."""
    owner_org_id: uuid.UUID
    """The organisation whose record it is (whose archivist may hold it)."""
    anchor: datetime
    """The date the retention time runs from (the rule's `anchor`)."""
    in_progress: str | None = None
    """Why the record may not be culled yet although its time is up (Swedish), or None."""
    objects: list[str] = field(default_factory=list)
    """Keys of its objects in the store."""


class RecordSource(Protocol):
    """What a feature's `records.py` module provides (modules satisfy it structurally)."""

    @property
    def KIND(self) -> str:
        """The record type: advisory | report | decision | roster."""

    @property
    def LABEL(self) -> str:
        """Its Swedish name ("Avisering")."""

    async def search(
        self,
        db: AsyncSession,
        org_id: uuid.UUID,
        *,
        is_jour: bool,
        since: datetime | None,
        until: datetime | None,
        pnr_index: str | None,
        after: Key | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """Records in `org_id`'s archive dated in [since, until), about the person when
        `pnr_index` is given (a blind index of a personnummer), newest first by (date, id),
        after the key `after`, at most `limit`; the caller merges the types and audits."""

    async def count(
        self,
        db: AsyncSession,
        org_id: uuid.UUID,
        *,
        is_jour: bool,
        since: datetime | None,
        until: datetime | None,
        pnr_index: str | None,
    ) -> int:
        """How many records `search` finds (all pages)."""

    async def holding(self, db: AsyncSession, record_id: uuid.UUID) -> Holding | None:
        """Owner and holders of the record; None when there is no such record."""

    async def describe(self, db: AsyncSession, vault: Vault, record_id: uuid.UUID) -> Record | None:
        """The whole record, decrypted (the caller has checked `holding`); None when missing."""


def seek(
    stmt: Select[*Ts], date_col: Any, id_col: Any, after: Key | None, limit: int | None
) -> Select[*Ts]:
    """A search's statement newest first by (date, id), after the key `after` (keyset paging,
    portal/paging.py), at most `limit` rows (all when None: the export reads everything)."""
    stmt = stmt.where(paging.after(date_col, id_col, after)).order_by(
        date_col.desc(), id_col.desc()
    )
    return stmt.limit(limit) if limit is not None else stmt


async def count_of(db: AsyncSession, stmt: Select[*Ts]) -> int:
    """How many rows a search's statement finds."""
    found = await db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(found or 0)


def in_period(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    """SQL conditions: `column` lies in [since, until) (either bound may be open)."""
    return [
        *([column >= since] if since is not None else []),
        *([column < until] if until is not None else []),
    ]


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Anchored:
    """A record type's retention facts as SQL, so that retention selects, pages and counts the
    due records in the database instead of loading every record (portal/retention/service.py)."""

    rows: Select[uuid.UUID, Any, int]
    """One row per record (of one organisation, or all): its `id`, its `anchor` (in the
    column's own type, see `to_sql`) and `busy` (1 while it is in progress, else 0)."""
    to_sql: Callable[[datetime], Any] = _same
    """A moment as a value of the `anchor` column (a placement's anchor is a date)."""
    from_sql: Callable[[Any], datetime] = _same
    """An `anchor` column value as the moment `Lifecycle.anchor` gives for it."""


def busy_flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """SQL: 1 where `condition` holds (the record is in progress), else 0."""
    return case((condition, 1), else_=0)


IN_CHUNK = 500
"""Ids bound in one `IN (…)` list at most: far below SQLite's 32,766 and asyncpg's 32,767 bound
parameters, and a page (50) or a culling batch (200) fits in one statement."""


def chunked(ids: Sequence[uuid.UUID], size: int = IN_CHUNK) -> Iterator[list[uuid.UUID]]:
    """`ids` in lists of at most `size` (each one statement's `IN` list)."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


async def in_chunks(
    ids: Sequence[uuid.UUID], read: Callable[[list[uuid.UUID]], Awaitable[Iterable[T]]]
) -> list[T]:
    """What `read` gives for each `chunked` list of `ids`, one after the other: a reader of an
    `IN` list that takes any number of ids (nothing is read for none)."""
    out: list[T] = []
    for chunk in chunked(ids):
        out.extend(await read(chunk))
    return out


def named_by(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """An empty list of personnummer for each record (what `persons_named_many` fills in)."""
    return {record_id: [] for record_id in ids}


async def lifecycles_of(
    db: AsyncSession,
    model: type[R],
    life: Callable[[R], Lifecycle],
    id_col: Any,
    ids: Sequence[uuid.UUID],
) -> list[Lifecycle]:
    """`life` of the rows of `model` with these ids (any number: `IN_CHUNK` a statement)."""

    async def read(chunk: list[uuid.UUID]) -> list[Lifecycle]:
        return [life(row) for row in await db.scalars(select(model).where(id_col.in_(chunk)))]

    return await in_chunks(ids, read)


async def lifecycles_with_files(
    db: AsyncSession,
    model: type[R],
    life: Callable[[R], Lifecycle],
    id_col: Any,
    owner_type: str,
    ids: Sequence[uuid.UUID],
) -> list[Lifecycle]:
    """`lifecycles_of` for a record type whose files are attachments (`owner_type`): each with
    the store keys of its attachments (any number of ids: two statements per `IN_CHUNK`)."""
    from portal.attachments.service import object_keys

    async def read(chunk: list[uuid.UUID]) -> list[Lifecycle]:
        these: Select[uuid.UUID] = select(id_col).where(id_col.in_(chunk))
        keys = await object_keys(db, owner_type, these)
        rows = await db.scalars(select(model).where(id_col.in_(chunk)))
        lives = (life(row) for row in rows)
        return [replace(lf, objects=keys.get(lf.record_id, [])) for lf in lives]

    return await in_chunks(ids, read)


async def lifecycle_of(
    db: AsyncSession, model: type[R], record_id: uuid.UUID, life: Callable[[R], Lifecycle]
) -> Lifecycle | None:
    """`life` of one row of `model`; None when it does not exist."""
    row = await db.get(model, record_id)
    return life(row) if row else None


async def attached_files(
    db: AsyncSession, vault: Vault, owner_type: str, owner_id: uuid.UUID
) -> list[StoredFile]:
    """A record's attachments as stored files, oldest first (through the attachments service)."""
    from portal.attachments.service import stored_attachments

    return [
        StoredFile(a.view.name, a.view.content_type, a.stored, a.view.id)
        for a in await stored_attachments(db, vault, owner_type=owner_type, owner_id=owner_id)
    ]
