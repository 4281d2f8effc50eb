"""`jourpost archive export`: an organisation's records as an E-ARK SIP, written to a file.

Run by an operator on the server (no login): every record of the organisation's archive in the
period, each audited as exported by the command line. The zip is written to a temporary file
next to the target and renamed when complete, so a failed export never leaves half a package.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select

from portal.archive import export, service
from portal.audit.service import ANONYMOUS
from portal.db.models import Organisation
from portal.settings import Settings


async def export_command(
    settings: Settings,
    *,
    org: str,
    since: datetime | None,
    until: datetime | None,
    kinds: list[str] | None,
    out: Path,
    pdf: bool = True,
) -> int:
    """Write the package; 0 on success, 2 for an unknown organisation."""
    from portal.app import build_runtime

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            try:
                as_id = uuid.UUID(org)
            except ValueError:
                as_id = None
            found = await db.scalar(
                select(Organisation).where(
                    or_(Organisation.name == org, Organisation.id == as_id)
                    if as_id
                    else Organisation.name == org
                )
            )
            if found is None:
                print(f"jourpost archive export: ingen organisation heter {org!r}")
                return 2
            refs: list[tuple[str, uuid.UUID]] = []
            for kind in kinds or list(service.KINDS):
                hits = await service.search_unchecked(db, found.id, [kind], since, until)
                refs += [(h.kind, h.id) for h in sorted(hits, key=lambda h: h.date)]
            name = found.name
        roots = list(runtime.signing.trust_roots) if runtime.signing else []
        records = export.load_records(
            runtime.sessionmaker,
            runtime.vault,
            runtime.object_store,
            refs,
            trust_roots=roots,
            actor=ANONYMOUS,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with open(partial, "wb") as fh:  # noqa: ASYNC230  (a CLI run: nothing else on this loop)
            async for chunk in export.stream_sip(
                records,
                runtime.object_store,
                label=f"{name}, {len(refs)} handlingar",
                archivist=export.archivist_for(settings, name),
                pdf=pdf,
            ):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        partial.replace(out)
        print(f"{out}: {len(refs)} handlingar från {name}")
        return 0
    finally:
        await runtime.engine.dispose()
