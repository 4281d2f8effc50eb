"""Find people by name over encrypted data: a blind index of normalised name tokens.

Names are stored encrypted; to find "Kalle Klient" without decrypting every record, each
record keeps one row per token of its subjects' names — the token's keyed hash (the same
HMAC key as personnummer, in a separate "name:" domain), never the token. A search hashes
its tokens the same way and finds the records that have all of them, so the cost depends on
the matches, not the archive.

Normalised: case folded, accents other than å/ä/ö removed (é → e), split on anything that is
not a letter (Anna-Karin → anna, karin), tokens of one letter dropped. A surname typed as
"Klient" finds "Kalle Klient"; "Kal" finds nothing (whole tokens only: prefix search would
make the index a guessing aid).

    tokens(text) -> list[str]
    index_names(db, vault, owner_type, owner_id, names)   replace an owner's rows
    forget(db, owner_type, owner_id)                        drop them (the record is culled)
    owners_named(db, vault, owner_type, text) -> set[uuid.UUID] | None   (None: no usable token)
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.lookup.models import NameToken
from portal.pii import Vault

_KEEP = {"å", "ä", "ö"}
_WORD = re.compile(r"[^\W\d_]+")


def _fold(ch: str) -> str:
    if ch in _KEEP:
        return ch
    return "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The normalised tokens of a name (sorted, unique)."""
    folded = "".join(_fold(c) for c in unicodedata.normalize("NFC", text.casefold()))
    return sorted({t for t in _WORD.findall(folded) if len(t) > 1})


def _hash(vault: Vault, token: str) -> str:
    return vault.index(f"name:{token}")


async def index_names(
    db: AsyncSession, vault: Vault, owner_type: str, owner_id: uuid.UUID, names: Iterable[str]
) -> None:
    """Make `names` the searchable names of the owner (replacing what it had)."""
    await forget(db, owner_type, owner_id)
    hashed = {_hash(vault, t) for name in names for t in tokens(name)}
    db.add_all(NameToken(owner_type=owner_type, owner_id=owner_id, token_index=h) for h in hashed)
    await db.flush()


async def forget(db: AsyncSession, owner_type: str, owner_id: uuid.UUID) -> None:
    """Drop the owner's rows (its record is deleted: nothing may still find it by name)."""
    await db.execute(
        delete(NameToken).where(NameToken.owner_type == owner_type, NameToken.owner_id == owner_id)
    )


async def owners_named(
    db: AsyncSession, vault: Vault, owner_type: str, text: str
) -> set[uuid.UUID] | None:
    """Owners whose names have every token of `text`; None when `text` has no usable token."""
    wanted = {_hash(vault, t) for t in tokens(text)}
    if not wanted:
        return None
    rows = await db.scalars(
        select(NameToken.owner_id)
        .where(NameToken.owner_type == owner_type, NameToken.token_index.in_(wanted))
        .group_by(NameToken.owner_id)
        .having(func.count(NameToken.token_index) == len(wanted))
    )
    return set(rows)


def search_key(vault: Vault, text: str) -> str:
    """What the audit log names for a name search: a keyed hash of its tokens, not the name."""
    return vault.index("name-search:" + " ".join(tokens(text)))
