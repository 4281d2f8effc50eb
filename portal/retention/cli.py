"""`jourpost retention run [--dry-run] [--json]`: cull what is due in every organisation.

The plan is printed as it is read, `service.CULL_BATCH` records at a time (never all of it in
memory, however much is due after a long pause); with `--json` the records kept are spooled to a
temporary file meanwhile, so that the output is still one object with the `cull` and `kept`
lists. The run then culls batch by batch (`service.cull`).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from typing import TextIO

from portal.audit.service import ANONYMOUS
from portal.db.base import utcnow
from portal.retention import service
from portal.settings import Settings


async def run_command(settings: Settings, *, dry_run: bool, as_json: bool) -> int:
    """Print the plan; cull unless `dry_run`. 0 when everything due was culled, 1 otherwise."""
    from portal.app import build_runtime

    runtime = build_runtime(settings)
    out = sys.stdout
    try:
        rules = service.load_rules(settings.retention_rules or None)
        store = runtime.object_store.store
        now = utcnow()
        async with runtime.sessionmaker() as db, db.begin():
            names = await service.org_names(db)
            counts = await service.plan_counts(db, rules, now=now)
            plan = service.iter_plan(db, runtime.vault, store, rules, now=now)
            if as_json:
                out.write(f'{{"dry_run": {json.dumps(dry_run)}, "now": "{now.isoformat()}",\n')
                out.write(' "cull": [')
                with tempfile.TemporaryFile("w+", encoding="utf-8") as kept:
                    first_cull = first_kept = True
                    async for c in plan:
                        item = json.dumps(service.candidate_json(c, names), ensure_ascii=False)
                        if c.action == "cull":
                            out.write(("\n  " if first_cull else ",\n  ") + item)
                            first_cull = False
                        else:
                            kept.write(("\n  " if first_kept else ",\n  ") + item)
                            first_kept = False
                    out.write('],\n "kept": [')
                    kept.seek(0)
                    _copy(kept, out)
                not_due = {t: n.not_due for t, n in counts.items()}
                out.write(f'],\n "not_due": {json.dumps(not_due)}}}\n')
            else:
                print(f"Gallring {now:%Y-%m-%d %H:%M} UTC{' (provkörning)' if dry_run else ''}")
                due: Counter[tuple[str, str]] = Counter()
                async for c in plan:
                    if c.action == "cull":
                        due[(names.get(c.owner_org_id, "?"), c.record_type)] += 1
                    else:
                        label = service.TYPE_LABELS[c.record_type]
                        print(f"  behålls: {label} {c.record_id}: {c.reason}")
                for (org, t), n in sorted(due.items()):
                    print(f"  gallras: {org}: {n} {service.TYPE_LABELS[t].lower()}")
                print(f"  ännu inte gallringsbara: { {t: n.not_due for t, n in counts.items()} }")
        out.flush()
        if dry_run:
            return 0
        result = await service.cull(
            runtime.sessionmaker, runtime.vault, store, rules, now=now, actor=ANONYMOUS
        )
        if not as_json:
            print(f"{result.deleted} handlingar gallrade, {result.failed_count} misslyckades")
        return 1 if result.failed_count else 0
    finally:
        await runtime.engine.dispose()


def _copy(src: TextIO, dst: TextIO) -> None:
    while chunk := src.read(64 * 1024):
        dst.write(chunk)
