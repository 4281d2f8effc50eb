"""portal.db.fast.Read: the same rows as SQLAlchemy, in the same transaction, the same errors.

Read runs a compiled SELECT on asyncpg beneath SQLAlchemy's pooled connection and relies on
private members of SQLAlchemy's asyncpg adapter: these tests fail if an upgrade moves them, if
a Read would answer differently from `AsyncConnection.execute` (values and types), if it ran
outside the request's transaction, or if a broken link were no longer reported as the outage
portal.db.faults turns into a 503.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import Integer, bindparam, func, literal, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.sessions import hash_token, new_token
from portal import principal
from portal.db.base import utcnow
from portal.db.engine import make_engine, make_sessionmaker
from portal.db.fast import Prepared
from portal.db.faults import is_outage
from portal.db.models import Membership, User, WebSession
from portal.db.reads import Read, read_together
from portal.demo import seed
from portal.pii import Vault
from portal.web.deps import NoOrmWrites
from tests.conftest import make_settings

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def seeded(database_url: str, tmp_path) -> AsyncIterator[tuple[AsyncEngine, str]]:  # type: ignore[no-untyped-def]
    """An engine on a demo-seeded database and a session token of a user with roles."""
    settings = make_settings(tmp_path, database_url)
    engine = make_engine(database_url)
    vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
    async with make_sessionmaker(engine)() as db, db.begin():
        await seed(db, vault)
        user_id = await db.scalar(select(Membership.user_id).limit(1))
        token, key = new_token()
        db.add(
            WebSession(id=key, user_id=user_id, authenticated_at=utcnow(), last_seen_at=utcnow())
        )
    try:
        yield engine, token
    finally:
        await engine.dispose()


async def _both(
    engine: AsyncEngine, read: Prepared, params: dict[str, object]
) -> tuple[list, list]:  # type: ignore[type-arg]
    async with engine.connect() as conn:
        fast = [tuple(row) for row in await read.all(conn, params)]
        slow = [tuple(row) for row in (await conn.execute(read.statement, params)).all()]
    return fast, slow


async def test_the_principals_read_gives_the_same_rows_and_types_as_sqlalchemy(
    seeded: tuple[AsyncEngine, str],
) -> None:
    engine, token = seeded
    read = principal._SESSION_USER_AND_ROLES
    fast, slow = await _both(engine, read, {"session_id": hash_token(token)})
    assert fast and fast == slow
    assert any(row[7] is not None for row in fast)  # the user has roles: every column non-null
    for f, s in zip(fast, slow, strict=True):
        assert [type(v) for v in f] == [type(v) for v in s]
    assert all(v.tzinfo is not None for v in fast[0][2:4])  # UTC-aware, as UTCDateTime gives
    assert await _both(engine, read, {"session_id": hash_token("no-such-token")}) == ([], [])


async def test_a_read_in_a_transaction_runs_inside_it(seeded: tuple[AsyncEngine, str]) -> None:
    """BEGIN is sent before the read (as the adapter's own cursor does), so the read sees the
    transaction's writes and (PostgreSQL) its now(); in autocommit nothing is begun. (SQLite's
    now() is per statement, to the second: only the writes are checked there.)"""
    engine, _ = seeded
    pg = engine.dialect.name == "postgresql"
    now = Prepared(select(func.now()))
    user = Prepared(select(User.id).where(User.id == bindparam("id")))
    async with make_sessionmaker(engine)() as db:
        conn = await db.connection()
        if pg:
            first = (await now.all(conn, {}))[0][0]
            await asyncio.sleep(0.02)
            assert (await conn.execute(select(func.now()))).scalar_one() == first
            assert (await now.all(conn, {}))[0][0] == first  # one transaction: one now()
        user_id = uuid.uuid4()
        db.add(User(id=user_id, pnr_index=f"fast-{user_id}", pnr_enc="x", name_enc="x"))
        await db.flush()
        assert [tuple(r) for r in await user.all(conn, {"id": user_id})] == [(user_id,)]
        await db.rollback()
    async with engine.connect() as conn:
        assert await user.all(conn, {"id": user_id}) == []  # the write was in that transaction
    if pg:
        auto = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with auto.connect() as conn:
            first = (await now.all(conn, {}))[0][0]
            await asyncio.sleep(0.02)
            assert (await now.all(conn, {}))[0][0] - first >= timedelta(milliseconds=15)


@pytest.mark.parametrize("size", [0, 1, 3])
async def test_expanding_lists_give_the_same_rows_as_sqlalchemys_in(
    seeded: tuple[AsyncEngine, str], size: int
) -> None:
    """IN and NOT IN lists (one array parameter each on PostgreSQL), a list used twice and a
    plain parameter between them: the same rows as SQLAlchemy's rendered lists, empty ones
    included (IN () matches nothing, NOT IN () everything)."""
    engine, _ = seeded
    async with engine.connect() as conn:
        ids = [row[0] for row in (await conn.execute(select(User.id).order_by(User.id))).all()]
    assert len(ids) > 4
    statement = Prepared(
        select(User.id, User.created_at)
        .where(
            User.id.in_(bindparam("some", expanding=True)),
            User.id.not_in(bindparam("others", expanding=True)),
            User.created_at <= bindparam("until"),
            User.id.in_(bindparam("some", expanding=True)) | (User.id == bindparam("one")),
        )
        .order_by(User.id)
    )
    params = {"some": ids[:size], "others": ids[1:2], "until": utcnow(), "one": ids[-1]}
    fast, slow = await _both(engine, statement, params)
    assert fast == slow
    assert [row[0] for row in fast] == [i for i in ids[:size] if i != ids[1]]
    everything = Prepared(select(User.id).where(User.id.not_in(bindparam("none", expanding=True))))
    assert len((await _both(engine, everything, {"none": []}))[0]) == len(ids)


async def test_text_statements_and_statements_without_rows(
    seeded: tuple[AsyncEngine, str],
) -> None:
    """A text() statement with a parameter used twice; `run` for one that returns no rows, in
    the caller's transaction (rolled back with it)."""
    engine, _ = seeded
    twice = Prepared(text("SELECT CAST(:a AS integer) + CAST(:a AS integer), CAST(:b AS text)"))
    fast, slow = await _both(engine, twice, {"a": 20, "b": "x"})
    assert fast == slow == [(40, "x")]
    rename = Prepared(text("UPDATE users SET pnr_index = :to WHERE pnr_index = :was"))
    async with make_sessionmaker(engine)() as db:
        conn = await db.connection()
        was = (await conn.execute(select(User.pnr_index).limit(1))).scalar_one()
        await rename.run(conn, {"to": "renamed", "was": was})
        assert (
            await conn.execute(select(func.count()).where(User.pnr_index == "renamed"))
        ).scalar_one() == 1
        await db.rollback()
    async with engine.connect() as conn:
        assert (
            await conn.execute(select(func.count()).where(User.pnr_index == was))
        ).scalar_one() == 1


async def test_parameters_rendered_per_call_other_than_in_lists_are_refused() -> None:
    with pytest.raises(TypeError, match="rendered per call"):
        Prepared(select(User.id).limit(bindparam("n", literal_execute=True)))


async def test_a_statement_error_is_sqlalchemys_and_not_an_outage(
    seeded: tuple[AsyncEngine, str],
) -> None:
    engine, _ = seeded
    broken = Prepared(select(func.no_such_function(bindparam("x", type_=Integer))))
    async with engine.connect() as conn:
        with pytest.raises(sa_exc.DBAPIError) as raised:
            await broken.all(conn, {"x": 0})
        assert not is_outage(raised.value)
        assert not raised.value.connection_invalidated
    async with engine.connect() as conn:  # the pool is fine
        assert [tuple(r) for r in await Prepared(select(literal(2))).all(conn, {})] == [(2,)]


@pytest.mark.postgres
async def test_a_broken_link_is_an_outage_and_the_connection_is_replaced(
    pg_url: str,
) -> None:
    """The backend is terminated under a checked-out connection: the read raises what
    SQLAlchemy raises for it (an invalidated connection: 503 by portal.db.faults), and the
    next checkout works on a new connection."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    pid_of = Prepared(select(func.pg_backend_pid()))
    try:
        async with engine.connect() as conn:
            pid = (await pid_of.all(conn, {}))[0][0]
            admin = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
            await asyncio.sleep(0.1)
            with pytest.raises(sa_exc.DBAPIError) as raised:
                await pid_of.all(conn, {})
            assert raised.value.connection_invalidated
            assert is_outage(raised.value)
        async with engine.connect() as conn:
            assert (await pid_of.all(conn, {}))[0][0] != pid
    finally:
        await engine.dispose()


async def test_a_missing_parameter_is_refused(seeded: tuple[AsyncEngine, str]) -> None:
    engine, _ = seeded
    async with engine.connect() as conn:
        with pytest.raises(sa_exc.SQLAlchemyError, match="session_id"):
            await principal._SESSION_USER_AND_ROLES.all(conn, {})


async def test_a_list_on_a_sized_text_column_matches_only_whole_values(
    seeded: tuple[AsyncEngine, str],
) -> None:
    """The array's cast has no length: `::VARCHAR(64)[]` would cut a longer value to the
    column's 64 characters, and it would then match the row holding those 64."""
    engine, _ = seeded
    async with engine.connect() as conn:
        index = (await conn.execute(select(User.pnr_index).limit(1))).scalar_one()
    assert len(index) == 64
    statement = Prepared(
        select(User.pnr_index).where(User.pnr_index.in_(bindparam("ix", expanding=True)))
    )
    assert "VARCHAR(64)" not in statement.sql
    assert await _both(engine, statement, {"ix": [index + "-longer"]}) == ([], [])
    assert await _both(engine, statement, {"ix": [index]}) == ([(index,)], [(index,)])


async def test_the_autocommit_session_refuses_orm_writes(seeded: tuple[AsyncEngine, str]) -> None:
    """`provide_autocommit_db`'s session class: a flush (explicit, or the autoflush before a
    query) raises and writes nothing — in autocommit each statement would commit alone."""
    engine, _ = seeded
    sessions = make_sessionmaker(engine)
    user_id = uuid.uuid4()
    async with sessions(sync_session_class=NoOrmWrites) as db:
        db.add(User(id=user_id, pnr_index=f"orm-{user_id}", pnr_enc="x", name_enc="x"))
        with pytest.raises(RuntimeError, match="provide_db"):
            await db.flush()
        with pytest.raises(RuntimeError, match="provide_db"):
            await db.execute(select(User.id).limit(1))  # autoflush first
        await db.rollback()
    async with engine.connect() as conn:
        assert (await conn.execute(select(User.id).where(User.id == user_id))).all() == []


async def test_reads_together_take_in_and_not_in_lists_empty_or_not(
    seeded: tuple[AsyncEngine, str],
) -> None:
    """portal.db.reads: IN and NOT IN lists (also empty, also one name in two reads) give the
    rows each read gives alone."""
    engine, _ = seeded
    ordered = select(User.id).order_by(User.id)
    not_in = ordered.where(User.id.not_in(bindparam("ids", expanding=True)))
    is_in = ordered.where(User.id.in_(bindparam("ids", expanding=True)))
    async with engine.connect() as conn:
        ids = [r[0] for r in (await conn.execute(ordered)).all()]
    reads = [
        Read(not_in, {"ids": ids[:2]}),
        Read(is_in, {"ids": ids[:2]}),
        Read(not_in, {"ids": []}),
        Read(is_in, {"ids": []}),
    ]
    async with make_sessionmaker(engine)() as db:
        together = [[tuple(row) for row in rows] for rows in await read_together(db, reads)]
        alone = [
            [tuple(row) for row in (await db.execute(r.statement, r.params)).all()] for r in reads
        ]
    assert together == alone
    assert [len(rows) for rows in together] == [len(ids) - 2, 2, len(ids), 0]


async def test_an_ordered_read_is_ordered_by_its_rows_positions(
    seeded: tuple[AsyncEngine, str],
) -> None:
    """portal.db.reads: an ordered read (here by an expression with a bound parameter, with a
    LIMIT) keeps its order inside the array by numbering its rows in that order and ordering
    the array's subquery by the number, which PostgreSQL guarantees; an unordered read is left
    as it is. The rows are those of the read alone."""
    from sqlalchemy import case, literal_column

    from portal.db import reads as reads_module

    engine, _ = seeded
    async with engine.connect() as conn:
        ids = [r[0] for r in (await conn.execute(select(User.id).order_by(User.id))).all()]
    first = bindparam("first")
    ordered = (
        select(User.id, literal_column("'x'").label("tag"))
        .order_by(case((User.id == first, 0), else_=1), User.id.desc())
        .limit(3)
    )
    unordered = select(User.id).where(User.id == bindparam("first"))
    reads = [Read(ordered, {"first": ids[0]}), Read(unordered, {"first": ids[-1]})]
    async with make_sessionmaker(engine)() as db:
        together = [[tuple(row) for row in rows] for rows in await read_together(db, reads)]
        alone = [
            [tuple(row) for row in (await db.execute(r.statement, r.params)).all()] for r in reads
        ]
    assert together == alone
    assert together[0][0][0] == ids[0] and [r[0] for r in together[0][1:]] == ids[::-1][:2]
    if engine.dialect.name == "postgresql":
        sql = str(reads_module._combine(reads).compile(dialect=engine.dialect))
        assert sql.count("row_number() OVER (ORDER BY") == 1
        assert "ORDER BY q0.read_position" in sql
