"""Keep a half-written form for its writer across a session timeout.

A jour worker writing a report at 03:00 is logged out after 30 idle minutes; the page script
(static/js/form-draft.js) saves the form here every few seconds while the session lives, and
the form, opened again after the new login, starts from the draft. Drafts are encrypted (they
hold the same personal data as the form), belong to one user and one form, are replaced on
every save, removed when the form is sent, and expire after DRAFT_LIFETIME; the periodic
session purge removes expired ones.

    save(db, vault, user_id, form_key, fields, now=)  -> None (InvalidInput if too big / bad)
    load(db, vault, user_id, form_key, now=)          -> Draft | None
    discard(db, user_id, form_key)                    -> None
    purge_expired(db, now=)                           -> int
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from portal.drafts.models import FormDraft
from portal.errors import InvalidInput
from portal.pii import Vault

DRAFT_LIFETIME = timedelta(hours=12)
"""A draft outlives a night shift and the session's absolute limit, not much more."""
MAX_DRAFT_BYTES = 64 * 1024
"""Largest draft kept (the text fields of a report, several times over)."""
FORM_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
"""Drafts are per form, named by the page (e.g. "report-new", "advisory-new")."""

Fields = dict[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class Draft:
    """A saved draft."""

    fields: Fields
    """Field name -> value (a list for repeated names, e.g. checked actions)."""
    saved_at: datetime
    """When it was last saved (UTC)."""


def _context(user_id: uuid.UUID, form_key: str) -> str:
    return f"form_drafts.data:{user_id}:{form_key}"


def check_key(form_key: str) -> str:
    """The form key, or InvalidInput."""
    if not FORM_KEY.fullmatch(form_key):
        raise InvalidInput(errors={"form_key": "Okänt formulär."})
    return form_key


def _clean(fields: object) -> Fields:
    if not isinstance(fields, dict):
        raise InvalidInput(errors={"fields": "Utkastet måste vara fält och värden."})
    out: Fields = {}
    for name, value in fields.items():
        if not isinstance(name, str) or name.startswith("_") or len(name) > 100:
            continue  # the CSRF token and other framework fields are never kept
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[name] = list(value)
    return out


async def save(
    db: AsyncSession,
    vault: Vault,
    user_id: uuid.UUID,
    form_key: str,
    fields: object,
    *,
    now: datetime,
) -> None:
    """Replace the user's draft of `form_key` with `fields`."""
    check_key(form_key)
    clean = _clean(fields)
    blob = json.dumps(clean, ensure_ascii=False)
    if len(blob.encode()) > MAX_DRAFT_BYTES:
        raise InvalidInput(errors={"fields": "Utkastet är för stort för att sparas."})
    data = vault.encrypt(blob, _context(user_id, form_key))
    row = await db.get(FormDraft, (user_id, form_key))
    if row is None:
        db.add(
            FormDraft(
                user_id=user_id,
                form_key=form_key,
                data_enc=data,
                saved_at=now,
                expires_at=now + DRAFT_LIFETIME,
            )
        )
    else:
        row.data_enc, row.saved_at, row.expires_at = data, now, now + DRAFT_LIFETIME
    await db.flush()


async def load(
    db: AsyncSession, vault: Vault, user_id: uuid.UUID, form_key: str, *, now: datetime
) -> Draft | None:
    """The user's live draft of `form_key`, or None."""
    check_key(form_key)
    row = await db.get(FormDraft, (user_id, form_key))
    if row is None or row.expires_at <= now:
        return None
    fields = json.loads(vault.decrypt(row.data_enc, _context(user_id, form_key)))
    return Draft(_clean(fields), row.saved_at)


async def discard(db: AsyncSession, user_id: uuid.UUID, form_key: str) -> None:
    """Remove the user's draft of `form_key` (sent, or thrown away)."""
    check_key(form_key)
    await db.execute(
        delete(FormDraft).where(FormDraft.user_id == user_id, FormDraft.form_key == form_key)
    )


async def purge_expired(db: AsyncSession, *, now: datetime) -> int:
    """Remove expired drafts; return how many."""
    result = await db.execute(delete(FormDraft).where(FormDraft.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
