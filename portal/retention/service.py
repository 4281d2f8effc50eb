"""Retention (gallring): which records are due, which are kept and why, and culling them.

Rules are data (data/rules.toml, overridable by `JOURPOST_RETENTION_RULES`). A record is due
when its anchor date plus the rule's months has passed. A due record is nevertheless kept when:
- it is under an active legal hold (an archivist placed it; see `place_hold`);
- its rule says `keep` (bevaras);
- it names a person born on one of the rule's `exempt_birth_days` (the research sample);
- it is still in progress (a decision not yet delivered, lifted or cancelled; a municipality's
  roster version that is still the newest);
- one of its files is still locked in the object store (retention or legal hold there): it is
  reported as blocked with the date it can go, and nothing of it is deleted.

The plan is selected, paged and counted in the database, never loaded whole: each record type's
`retention_rows` (portal/records.py `Anchored`) gives every record's anchor as SQL, and the due
ones are read oldest anchor first by (anchor, id) in keyset pages (`plan_page`, `iter_plan`);
the counts of the whole plan are SQL counts (`plan_counts`). `add_months` clamps the day to the
month's length while keeping the time of day, so "anchor plus months has passed" is not one
cutoff on the anchor: `due_bounds` gives a cutoff up to which every record is due and a bound
past which none is, and the few records between the two (the days at a month's end) are
re-checked in Python with `add_months` itself. The research sample is judged a page at a time:
the persons of the page's records that reach that step are read and decrypted in one statement
per type (`persons_named_many`), not one per record.

Culling reads the due records in batches (`CULL_BATCH`, each batch read in a short transaction
of its own) and deletes one record per transaction: every row that belongs to it, its objects in
the store, then an audit entry (`retention.cull`, ids and rule only); if an object cannot be
deleted the transaction rolls back and the record stays whole in the database. A run that is
killed leaves what it culled culled and the rest for the next run.

The active legal holds are listed in keyset pages too, newest first (`hold_page`), each page
audited with the ids of the holds it shows.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import tomllib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal import paging
from portal.advisories import records as advisories
from portal.assignments import records as assignments
from portal.audit import service as audit
from portal.audit.service import Actor
from portal.db.models import Organisation
from portal.decisions import records as decisions
from portal.errors import AuditNote, Conflict, InvalidInput, NotFound
from portal.paging import Key
from portal.people import user_names
from portal.pii import Vault, field_context
from portal.placements import records as placements
from portal.police import records as police
from portal.records import Anchored, Holding, Lifecycle, busy_flag
from portal.reports import records as reports
from portal.retention.models import LegalHold
from portal.rosters import records as rosters
from storage import ObjectStore
from storage.errors import ObjectNotFound, StorageError


class RecordType(Protocol):
    """What retention needs of a record feature: its `records` module (one rule per type)."""

    @property
    def KIND(self) -> str:
        """advisory | report | decision | roster."""

    @property
    def LABEL(self) -> str:
        """Its Swedish name."""

    def retention_rows(self, org_id: uuid.UUID | None = ...) -> Anchored: ...

    async def lifecycles(self, db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Lifecycle]: ...

    async def lifecycle(self, db: AsyncSession, record_id: uuid.UUID) -> Lifecycle | None: ...

    async def holding(self, db: AsyncSession, record_id: uuid.UUID) -> Holding | None: ...

    async def persons_named_many(
        self, db: AsyncSession, vault: Vault, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]: ...

    async def cull(self, db: AsyncSession, record_id: uuid.UUID) -> None: ...


_MODULES: tuple[RecordType, ...] = (
    advisories,
    reports,
    decisions,
    rosters,
    assignments,
    placements,
    police,
)
RECORDS: dict[str, RecordType] = {m.KIND: m for m in _MODULES}
"""Each record type's interface module (`portal.<feature>.records`)."""
TYPES = tuple(RECORDS)
"""advisory, report, decision, roster."""
TYPE_LABELS = {t: m.LABEL for t, m in RECORDS.items()}
"""Their Swedish names, as the features name them."""


@dataclass(frozen=True, slots=True)
class Rule:
    """The retention rule of one record type."""

    record_type: str
    """advisory | report | decision | roster."""
    after_months: int
    """Months after the anchor date."""
    anchor: str
    """Which date the time runs from."""
    keep: bool = False
    """Never culled (bevaras)."""
    exempt_birth_days: tuple[int, ...] = ()
    """Kept when the record names a person born on one of these days."""


def load_rules(path: str | None = None) -> dict[str, Rule]:
    """The rules from `path`, or the defaults shipped with the package."""
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("portal.retention").joinpath("data", "rules.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    rules: dict[str, Rule] = {}
    for t in TYPES:
        if t not in raw:
            raise ValueError(f"retention rules: no rule for {t!r}")
        r = raw[t]
        rules[t] = Rule(
            t,
            int(r["after_months"]),
            str(r["anchor"]),
            bool(r.get("keep", False)),
            tuple(int(d) for d in r.get("exempt_birth_days", ())),
        )
    return rules


def add_months(when: datetime, months: int) -> datetime:
    """`when` plus whole calendar months (the day clamped to the month's length)."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def due_bounds(now: datetime, months: int) -> tuple[datetime, datetime]:
    """(sure, until) for a rule of `months`: every anchor on or before `sure` is due at `now`,
    and no anchor after `until` is. They differ only at a month's end, where `add_months`
    clamps: at 31 March (or on the last day of any month), 31 January plus 2 months is 31 March
    but 30 January 14:00 plus 2 months is 30 March 14:00, so whether a day at the end of the
    month `months` back is due depends on its time of day, not only on a cutoff. Records between
    the two are re-checked with `add_months`."""
    sure = add_months(now, -months)
    last_day = calendar.monthrange(now.year, now.month)[1]
    if sure.day == now.day and now.day < last_day:
        return sure, sure  # no clamping either way: exactly the anchors up to `sure`
    first_of_next = datetime(sure.year, sure.month, 1, tzinfo=sure.tzinfo) + timedelta(days=32)
    month_end = first_of_next.replace(day=1) - timedelta(microseconds=1)
    return sure, month_end


def birth_day(pnr: str) -> int:
    """Day of birth from a 12-digit personnummer (coordination numbers: day + 60)."""
    day = int(pnr[6:8])
    return day - 60 if day > 60 else day


@dataclass(slots=True)
class Candidate:
    """A record whose time is up, and what happens to it."""

    record_type: str
    """advisory | report | decision | roster."""
    record_id: uuid.UUID
    """The record."""
    owner_org_id: uuid.UUID
    """Whose record it is."""
    due_at: datetime
    """When its retention time ran out."""
    anchor: datetime
    """The date its retention time runs from (its place in the plan: by anchor, then id)."""
    action: str = "cull"
    """cull | hold | keep | exempt | in_progress | blocked."""
    reason: str = ""
    """Why it is kept (Swedish)."""
    blocked_until: datetime | None = None
    """For blocked records: when the object store lets it go."""
    objects: list[str] = field(default_factory=list)
    """Keys of its objects in the store."""

    @property
    def key(self) -> Key:
        """Its place in the plan (keyset paging: oldest anchor first, then id)."""
        return (self.anchor, self.record_id)


@dataclass(frozen=True, slots=True)
class Counts:
    """The whole plan of one record type, counted in the database."""

    due: int
    """Records whose time is up (each one is in the list, culled or kept)."""
    held: int
    """Of those, under an active legal hold."""
    kept: int
    """Of those, kept because the rule says `keep` (and not held)."""
    in_progress: int
    """Of those, still in progress (and neither held nor kept by the rule)."""
    not_due: int
    """Records whose time is not up."""

    @property
    def cullable(self) -> int:
        """Due and neither held, kept nor in progress: culled unless the research sample keeps
        it or a file is locked in the store (both are judged on the list's pages and when
        culling: the sample a page at a time, the store's locks file by file)."""
        return self.due - self.held - self.kept - self.in_progress


CULL_BATCH = 200
"""Records a culling run reads (and then culls, one transaction each) at a time."""


def _held(record_type: str, record_id: Any) -> ColumnElement[int]:
    """SQL: 1 when the record is under an active legal hold, else 0."""
    return busy_flag(
        exists().where(
            LegalHold.record_type == record_type,
            LegalHold.record_id == record_id,
            LegalHold.lifted_at.is_(None),
        )
    )


@dataclass(frozen=True, slots=True)
class _Due:
    """A record whose time is up, as the plan's query found it."""

    record_id: uuid.UUID
    anchor: datetime
    held: bool


async def _due_rows(
    db: AsyncSession,
    record_type: str,
    rule: Rule,
    *,
    now: datetime,
    org_id: uuid.UUID | None,
    after: Key | None,
    limit: int,
) -> tuple[list[_Due], bool]:
    """Up to `limit` records of the type whose time is up at `now`, oldest anchor first by
    (anchor, id), after `after`; and whether more follow. Read `limit + 1` at a time: only
    the records between `due_bounds` can come back not due, and another read continues after
    them (a few at a month's end)."""
    source = RECORDS[record_type].retention_rows(org_id)
    rows = source.rows.subquery()
    _, until = due_bounds(now, rule.after_months)
    found: list[_Due] = []
    key = after
    while True:
        wanted = limit + 1 - len(found)
        sql_key = None if key is None else (source.to_sql(key[0]), key[1])
        stmt = (
            select(rows.c.id, rows.c.anchor, _held(record_type, rows.c.id))
            .where(
                rows.c.anchor <= source.to_sql(until),
                paging.later(rows.c.anchor, rows.c.id, sql_key),
            )
            .order_by(rows.c.anchor, rows.c.id)
            .limit(wanted)
        )
        read = list(await db.execute(stmt))
        for record_id, value, held in read:
            anchor = source.from_sql(value)
            key = (anchor, record_id)
            if add_months(anchor, rule.after_months) <= now:
                found.append(_Due(record_id, anchor, bool(held)))
        if len(found) > limit:
            return found[:limit], True
        if len(read) < wanted:
            return found, False


async def plan_page(
    db: AsyncSession,
    vault: Vault,
    store: ObjectStore,
    rules: dict[str, Rule],
    record_type: str,
    *,
    now: datetime,
    org_id: uuid.UUID | None = None,
    after: Key | None = None,
    limit: int = paging.PAGE_SIZE,
) -> tuple[list[Candidate], bool]:
    """One page of the plan of one record type: up to `limit` records whose time is up at `now`
    (of one organisation, or all), oldest anchor first, after the key `after`, each judged (to
    cull, or kept and why); and whether more follow."""
    rule = rules[record_type]
    due, more = await _due_rows(
        db, record_type, rule, now=now, org_id=org_id, after=after, limit=limit
    )
    source = RECORDS[record_type]
    lives = {
        life.record_id: life for life in await source.lifecycles(db, [d.record_id for d in due])
    }
    # A record missing from `lives` was culled since the page's query read it.
    found = [(d, lives[d.record_id]) for d in due if d.record_id in lives]
    # The research sample: the persons of the page's records that reach that step, read at once
    # (one statement for the page, not one per record).
    asked = [d.record_id for d, life in found if _asks_sample(rule, d.held, life.in_progress)]
    named = await source.persons_named_many(db, vault, asked) if asked else {}
    candidates: list[Candidate] = []
    for d, life in found:
        c = Candidate(
            record_type,
            d.record_id,
            life.owner_org_id,
            add_months(d.anchor, rule.after_months),
            d.anchor,
            objects=list(life.objects),
        )
        _judge(c, rule, d.held, life.in_progress, named.get(d.record_id, ()))
        if c.action == "cull":
            await _check_store_locks(store, c, now)
        candidates.append(c)
    return candidates, more


async def iter_plan(
    db: AsyncSession,
    vault: Vault,
    store: ObjectStore,
    rules: dict[str, Rule],
    *,
    now: datetime,
    org_id: uuid.UUID | None = None,
    batch: int = CULL_BATCH,
) -> AsyncIterator[Candidate]:
    """The whole plan, type by type, read `batch` records at a time (bounded memory: for the
    command line's dry run, which prints all of it)."""
    for t in TYPES:
        after: Key | None = None
        while True:
            page, more = await plan_page(
                db, vault, store, rules, t, now=now, org_id=org_id, after=after, limit=batch
            )
            for c in page:
                yield c
            if not more or not page:
                break
            after = page[-1].key


def _how_many(cond: ColumnElement[bool]) -> ColumnElement[int]:
    """SQL: how many rows satisfy `cond` (0 when none)."""
    return func.coalesce(func.sum(busy_flag(cond)), 0)


async def plan_counts(
    db: AsyncSession, rules: dict[str, Rule], *, now: datetime, org_id: uuid.UUID | None = None
) -> dict[str, Counts]:
    """The whole plan's counts per record type, in the database (one statement a type, and one
    more for the days between `due_bounds` at a month's end)."""
    out: dict[str, Counts] = {}
    for t in TYPES:
        rule = rules[t]
        source = RECORDS[t].retention_rows(org_id)
        rows = source.rows.subquery()
        sure, until = due_bounds(now, rule.after_months)
        held = _held(t, rows.c.id)
        up_to_sure = rows.c.anchor <= source.to_sql(sure)

        total, due, n_held, n_busy = (
            await db.execute(
                select(
                    func.count(),
                    _how_many(up_to_sure),
                    _how_many(up_to_sure & (held == 1)),
                    _how_many(up_to_sure & (held == 0) & (rows.c.busy == 1)),
                ).select_from(rows)
            )
        ).one()
        # The days at a month's end between the bounds: re-checked one by one (a few days' worth).
        window: list[tuple[Any, int, int]] = []
        if until > sure:
            window = [
                (value, is_held, busy)
                for value, is_held, busy in await db.execute(
                    select(rows.c.anchor, held, rows.c.busy).where(
                        rows.c.anchor > source.to_sql(sure), rows.c.anchor <= source.to_sql(until)
                    )
                )
            ]
        for value, is_held, busy in window:
            if add_months(source.from_sql(value), rule.after_months) <= now:
                due, n_held = due + 1, n_held + bool(is_held)
                n_busy += bool(busy) and not is_held
        due, n_held, n_busy = int(due), int(n_held), int(n_busy)
        kept = due - n_held if rule.keep else 0
        out[t] = Counts(due, n_held, kept, 0 if rule.keep else n_busy, int(total) - due)
    return out


def candidate_json(c: Candidate, names: dict[uuid.UUID, str] | None = None) -> dict[str, Any]:
    """A record of the plan for `--json`."""
    return {
        "type": c.record_type,
        "id": str(c.record_id),
        "organisation": (names or {}).get(c.owner_org_id, str(c.owner_org_id)),
        "due_at": c.due_at.isoformat(),
        "action": c.action,
        "reason": c.reason,
        "blocked_until": c.blocked_until.isoformat() if c.blocked_until else None,
    }


def _asks_sample(rule: Rule, held: bool, in_progress: str | None) -> bool:
    """Whether `_judge` reaches the research sample for a due record (and needs its persons):
    the rule has one, and no earlier reason keeps the record."""
    return bool(rule.exempt_birth_days) and not (held or rule.keep or in_progress)


def _judge(
    c: Candidate,
    rule: Rule,
    held: bool,
    in_progress: str | None,
    persons: Sequence[str],
) -> None:
    """Step 1 for a due record: kept by a legal hold, by its rule, while in progress, or as
    part of the research sample (the first reason wins); otherwise left to cull. `persons` are
    the personnummer the record names (read, for a page at once, only when `_asks_sample`)."""
    if held:
        c.action, c.reason = "hold", "Bevaras: spärrad för gallring (legal hold)."
    elif rule.keep:
        c.action, c.reason = "keep", "Bevaras enligt gallringsreglerna för typen."
    elif in_progress:
        c.action, c.reason = "in_progress", in_progress
    elif rule.exempt_birth_days and any(birth_day(p) in rule.exempt_birth_days for p in persons):
        days = ", ".join(str(d) for d in rule.exempt_birth_days)
        c.action = "exempt"
        c.reason = f"Bevaras: person född den {days} i månaden (forskningsurval)."


async def _check_store_locks(store: ObjectStore, c: Candidate, now: datetime) -> None:
    """Step 2 for a record left to cull: blocked while one of its files is locked in the store
    (a legal hold there, or a retention date after `now`)."""
    for key in c.objects:
        until, on_hold = await store.lock_state(key)
        if on_hold:
            c.action, c.reason = "blocked", "En fil är spärrad i lagringen (legal hold)."
            return
        if until is not None and until > now:
            c.action = "blocked"
            c.blocked_until = max(until, c.blocked_until or until)
            c.reason = "En fil är låst i lagringen till " + c.blocked_until.date().isoformat() + "."


FAILED_LISTED = 100
"""Failed records a culling run lists (all are counted): the result stays small when the store
is down for every record."""


@dataclass(slots=True)
class CullResult:
    """What a culling run did."""

    deleted: int = 0
    """Records deleted."""
    failed: list[tuple[Candidate, str]] = field(default_factory=list)
    """The first `FAILED_LISTED` records that could not be deleted (kept whole), with why."""
    failed_count: int = 0
    """Records that could not be deleted."""


async def cull(
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: Vault,
    store: ObjectStore,
    rules: dict[str, Rule],
    *,
    now: datetime,
    actor: Actor,
    org_id: uuid.UUID | None = None,
    batch: int = CULL_BATCH,
) -> CullResult:
    """Delete every record due at `now` (of one organisation, or all) that the plan marks for
    culling. The plan is read `batch` records at a time, each batch in a short transaction of
    its own, and each record is culled in a transaction of its own: a run stopped half-way has
    culled what it culled, and the next run finds the rest."""
    result = CullResult()
    for t in TYPES:
        if rules[t].keep:
            continue  # nothing of the type is ever culled
        after: Key | None = None
        while True:
            async with sessionmaker() as db, db.begin():
                page, more = await plan_page(
                    db, vault, store, rules, t, now=now, org_id=org_id, after=after, limit=batch
                )
            for c in page:
                if c.action == "cull":
                    await _cull_each(sessionmaker, store, c, actor, rules[t], result)
            if not more or not page:
                break
            after = page[-1].key
    return result


async def _cull_each(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    c: Candidate,
    actor: Actor,
    rule: Rule,
    result: CullResult,
) -> None:
    try:
        async with sessionmaker() as db, db.begin():
            await _cull_one(db, store, c, actor=actor, rule=rule)
    except StorageError as exc:
        result.failed_count += 1
        if len(result.failed) < FAILED_LISTED:
            result.failed.append((c, f"filen kunde inte tas bort ({type(exc).__name__})"))
        return
    result.deleted += 1


async def _cull_one(
    db: AsyncSession, store: ObjectStore, c: Candidate, *, actor: Actor, rule: Rule
) -> None:
    """One record in the caller's transaction: its rows, then its files, then the audit entry."""
    await RECORDS[c.record_type].cull(db, c.record_id)
    await db.flush()
    # Files before the audit entry: the entry locks the audit chain's head row until the commit,
    # and a slow or frozen object store must not hold that lock (every audited request of every
    # instance waits for it). A file that can't be removed rolls the rows back; the record is
    # retried on the next run.
    for key in c.objects:
        with contextlib.suppress(ObjectNotFound):  # already gone: nothing to remove
            await store.delete(key)
    await audit.record(
        db,
        "retention.cull",
        actor=actor,
        owner_org_id=c.owner_org_id,
        object_type=c.record_type,
        object_id=c.record_id,
        details={
            "rule": f"{rule.after_months} months after {rule.anchor}",
            "due_at": c.due_at.isoformat(),
            "files": len(c.objects),
        },
    )


REASON_MAX = 500
"""Characters of a hold's reason (a case number and a sentence, not a document)."""


async def _lifecycle(db: AsyncSession, record_type: str, record_id: uuid.UUID) -> Lifecycle | None:
    """The record's owner and its files (None when it or its type does not exist)."""
    return await RECORDS[record_type].lifecycle(db, record_id) if record_type in RECORDS else None


async def _in_owners_archive(db: AsyncSession, record_type: str, life: Lifecycle) -> bool:
    """Whether the owner's archive holds the record (the feature's one visibility rule,
    `holding`): not so for a chair decision still a draft, the jour's working material until it
    is sent for signature, although the municipality owns it."""
    found = await RECORDS[record_type].holding(db, life.record_id)
    return found is not None and life.owner_org_id in found.holders


async def _holdable(
    db: AsyncSession,
    *,
    actor_orgs: set[uuid.UUID],
    record_type: str,
    record_id: uuid.UUID,
    reason: str,
) -> Lifecycle:
    """The record to hold: one of the archivist's organisations' and in that organisation's
    archive (404, audited, for any other — a record the archivist cannot open in their archive
    is answered as one of another organisation's), with a reason, and not held already."""
    life = await _lifecycle(db, record_type, record_id)
    if (
        life is None
        or life.owner_org_id not in actor_orgs
        or not await _in_owners_archive(db, record_type, life)
    ):
        raise NotFound(
            audit=AuditNote(
                "retention.hold",
                "not_found",
                owner_org_id=life.owner_org_id if life else None,
                object_type=record_type if record_type in TYPES else None,
                object_id=str(record_id),
            )
        )
    if not reason.strip():
        raise InvalidInput(errors={"reason": "Ange skälet till spärren (t.ex. ärendenummer)."})
    if len(reason.strip()) > REASON_MAX:
        raise InvalidInput(errors={"reason": f"Skälet får vara högst {REASON_MAX} tecken."})
    if await _active_hold(db, record_type, record_id) is not None:
        raise Conflict("Handlingen är redan spärrad för gallring.")
    return life


async def place_hold(
    db: AsyncSession,
    vault: Vault,
    store: ObjectStore,
    *,
    actor_orgs: set[uuid.UUID],
    actor: Actor,
    record_type: str,
    record_id: uuid.UUID,
    reason: str,
) -> LegalHold:
    """Hold a record in the archive of one of the archivist's organisations, its owner (404,
    audited, for any other, and for a record its owner's archive does not hold yet): a
    legal hold row, its files held in the store too, and an audit entry whose actor acts in
    the record's owner (the archive the hold belongs to), whichever page it was placed from."""
    life = await _holdable(
        db, actor_orgs=actor_orgs, record_type=record_type, record_id=record_id, reason=reason
    )
    hold = LegalHold(
        id=uuid.uuid4(),
        record_type=record_type,
        record_id=record_id,
        organisation_id=life.owner_org_id,
        reason_enc="",
        placed_by=actor.user_id,
    )
    hold.reason_enc = vault.encrypt(reason.strip(), field_context(LegalHold.reason_enc, hold.id))
    db.add(hold)
    await db.flush()
    for key in life.objects:
        await store.set_legal_hold(key, True)
    await audit.record(
        db,
        "retention.hold",
        actor=dataclasses.replace(actor, org_id=life.owner_org_id),
        owner_org_id=life.owner_org_id,
        object_type=record_type,
        object_id=record_id,
    )
    return hold


async def lift_hold(
    db: AsyncSession,
    store: ObjectStore,
    *,
    actor_orgs: set[uuid.UUID],
    actor: Actor,
    hold_id: uuid.UUID,
    now: datetime,
) -> None:
    """Lift an active hold of one of the archivist's organisations (its store holds too); the
    audit entry's actor acts in the hold's organisation."""
    hold = await db.get(LegalHold, hold_id)
    if hold is None or hold.organisation_id not in actor_orgs or hold.lifted_at is not None:
        raise NotFound(
            audit=AuditNote(
                "retention.lift", "not_found", object_type="legal_hold", object_id=str(hold_id)
            )
        )
    hold.lifted_at, hold.lifted_by = now, actor.user_id
    life = await _lifecycle(db, hold.record_type, hold.record_id)
    for key in life.objects if life else []:
        await store.set_legal_hold(key, False)
    await audit.record(
        db,
        "retention.lift",
        actor=dataclasses.replace(actor, org_id=hold.organisation_id),
        owner_org_id=hold.organisation_id,
        object_type=hold.record_type,
        object_id=hold.record_id,
    )


async def _active_hold(
    db: AsyncSession, record_type: str, record_id: uuid.UUID
) -> LegalHold | None:
    return await db.scalar(
        select(LegalHold).where(
            LegalHold.record_type == record_type,
            LegalHold.record_id == record_id,
            LegalHold.lifted_at.is_(None),
        )
    )


@dataclass(frozen=True, slots=True)
class HoldView:
    """An active hold as its record's page shows it."""

    id: uuid.UUID
    """The hold."""
    record_type: str
    """The held record's type."""
    record_id: uuid.UUID
    """The held record."""
    organisation_id: uuid.UUID
    """The organisation whose archive placed it (the record's owner)."""
    placed_at: datetime
    """When it was placed (UTC)."""
    placed_by: str
    """Who placed it (name)."""
    reason: str
    """Why (decrypted; e.g. a court's case number)."""


async def record_hold(
    db: AsyncSession, vault: Vault, record_type: str, record_id: uuid.UUID
) -> HoldView | None:
    """The record's active hold, if any, with no access check: for a page that has already
    opened the record (the archive's record page), which decides what of it to show."""
    hold = await _active_hold(db, record_type, record_id)
    return None if hold is None else await _view(db, vault, hold)


async def _view(db: AsyncSession, vault: Vault, hold: LegalHold) -> HoldView:
    return (await _views(db, vault, [hold]))[0]


async def _views(db: AsyncSession, vault: Vault, holds: Sequence[LegalHold]) -> list[HoldView]:
    """The holds as shown, with who placed them (one statement for the names of all)."""
    names = await user_names(db, vault, [h.placed_by for h in holds])
    return [
        HoldView(
            h.id,
            h.record_type,
            h.record_id,
            h.organisation_id,
            h.placed_at,
            names.get(h.placed_by, ""),
            vault.decrypt(h.reason_enc, field_context(LegalHold.reason_enc, h.id)),
        )
        for h in holds
    ]


async def active_hold(
    db: AsyncSession, vault: Vault, *, actor_orgs: set[uuid.UUID], hold_id: uuid.UUID
) -> HoldView:
    """An active hold of one of the archivist's organisations (to confirm lifting it); NotFound,
    audited as `retention.lift`, for any other or a lifted one."""
    hold = await db.get(LegalHold, hold_id)
    if hold is None or hold.organisation_id not in actor_orgs or hold.lifted_at is not None:
        raise NotFound(
            audit=AuditNote(
                "retention.lift", "not_found", object_type="legal_hold", object_id=str(hold_id)
            )
        )
    return await _view(db, vault, hold)


async def liftable_hold(
    db: AsyncSession,
    vault: Vault,
    *,
    actor_orgs: set[uuid.UUID],
    record_type: str,
    record_id: uuid.UUID,
) -> HoldView:
    """The record's active hold when the archivist may lift it; NotFound (audited as
    `retention.lift`) when the record is not one of their organisations', Conflict when it is
    not held (any more)."""
    life = await _lifecycle(db, record_type, record_id)
    if life is None or life.owner_org_id not in actor_orgs:
        raise NotFound(
            audit=AuditNote(
                "retention.lift",
                "not_found",
                owner_org_id=life.owner_org_id if life else None,
                object_type=record_type if record_type in TYPES else None,
                object_id=str(record_id),
            )
        )
    view = await record_hold(db, vault, record_type, record_id)
    if view is None:
        raise Conflict("Handlingen är inte spärrad för gallring (spärren kan redan vara hävd).")
    return view


async def hold_page(
    db: AsyncSession,
    vault: Vault,
    *,
    org_id: uuid.UUID,
    actor: Actor,
    cursor: paging.Cursor | None = None,
    limit: int = paging.PAGE_SIZE,
) -> paging.Page[HoldView]:
    """One page of the organisation's active holds, newest first by (placed_at, id) after the
    cursor, with their (decrypted) reasons and the count of all; audited as
    `retention.hold_list` naming exactly the holds shown (the reasons are read)."""
    active = (LegalHold.organisation_id == org_id, LegalHold.lifted_at.is_(None))
    rows = list(
        await db.scalars(
            select(LegalHold)
            .where(*active, paging.after(LegalHold.placed_at, LegalHold.id, cursor))
            .order_by(LegalHold.placed_at.desc(), LegalHold.id.desc())
            .limit(limit + 1)
        )
    )
    total = await db.scalar(select(func.count()).select_from(LegalHold).where(*active))
    page = paging.page_of(
        await _views(db, vault, rows[:limit]),
        more=len(rows) > limit,
        cursor=cursor,
        key=lambda h: (h.placed_at, h.id),
        total=int(total or 0),
    )
    await audit.record(
        db,
        "retention.hold_list",
        actor=actor,
        owner_org_id=org_id,
        object_type="legal_hold",
        details={"holds": [str(h.id) for h in page.rows], "from": page.first},
    )
    return page


async def org_names(db: AsyncSession) -> dict[uuid.UUID, str]:
    """Every organisation's name (for reports)."""
    return {i: n for i, n in await db.execute(select(Organisation.id, Organisation.name))}
