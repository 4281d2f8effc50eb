"""`jourpost retention run [--dry-run] [--json]`: cull what is due in every organisation."""

from __future__ import annotations

import json
from collections import Counter

from portal.audit.service import ANONYMOUS
from portal.db.base import utcnow
from portal.retention import service
from portal.settings import Settings


async def run_command(settings: Settings, *, dry_run: bool, as_json: bool) -> int:
    """Print the plan; cull unless `dry_run`. 0 when everything due was culled, 1 otherwise."""
    from portal.app import build_runtime

    runtime = build_runtime(settings)
    try:
        rules = service.load_rules(settings.retention_rules or None)
        store = runtime.object_store.store
        async with runtime.sessionmaker() as db:
            the_plan = await service.plan(db, runtime.vault, store, rules, now=utcnow())
            names = await service.org_names(db)
        if as_json:
            print(
                json.dumps(
                    {"dry_run": dry_run, **the_plan.as_json(names)}, ensure_ascii=False, indent=2
                )
            )
        else:
            print(
                f"Gallring {the_plan.now:%Y-%m-%d %H:%M} UTC{' (provkörning)' if dry_run else ''}"
            )
            due = Counter((names.get(c.owner_org_id, "?"), c.record_type) for c in the_plan.due)
            for (org, t), n in sorted(due.items()):
                print(f"  gallras: {org}: {n} {service.TYPE_LABELS[t].lower()}")
            for c in the_plan.kept:
                print(f"  behålls: {service.TYPE_LABELS[c.record_type]} {c.record_id}: {c.reason}")
            print(f"  ännu inte gallringsbara: {the_plan.not_due}")
        if dry_run:
            return 0
        result = await service.cull(
            runtime.sessionmaker, store, the_plan, actor=ANONYMOUS, rules=rules
        )
        if not as_json:
            print(f"{len(result.deleted)} handlingar gallrade, {len(result.failed)} misslyckades")
        return 1 if result.failed else 0
    finally:
        await runtime.engine.dispose()
