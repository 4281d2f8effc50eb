"""The `jourpost` command: demo, serve, database migrations."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from portal.logs import configure_cli
from portal.settings import Settings, SettingsError, load_settings

INSECURE_FLAG = "--insecure-development"


def serve_refusals(settings: Settings) -> list[str]:
    """Why `jourpost serve` refuses this configuration without INSECURE_FLAG (empty: it won't).

    `serve` is what an operator starts on a network: anything that lets a stranger in — the
    development identity provider (anyone logs in as anyone), plain http (cookies and codes in
    the clear), a mode other than production (demo shortcuts) — must be asked for by name.
    Missing keys are refused by `Settings.validate` whatever the flag.
    """
    reasons = []
    if settings.dev_idp_enabled:
        reasons.append(
            "the development identity provider is enabled (JOURPOST_DEV_IDP_ENABLED): "
            "anyone could log in as anyone"
        )
    if not settings.https:
        reasons.append(f"JOURPOST_PUBLIC_URL is not https ({settings.public_url})")
    if settings.mode != "production":
        reasons.append(f"JOURPOST_MODE is {settings.mode!r}, not 'production'")
    return reasons


def _guarded_serve(settings: Settings, *, insecure: bool) -> int:
    reasons = serve_refusals(settings)
    if reasons and not insecure:
        print(
            "jourpost serve: refusing to start an insecure portal:\n  - "
            + "\n  - ".join(reasons)
            + f"\nFix the configuration, use `jourpost demo` to try Jourpost, or pass "
            f"{INSECURE_FLAG} on a machine no one else can reach.",
            file=sys.stderr,
        )
        return 2
    if reasons:
        banner = "!" * 78
        print(
            f"{banner}\nINSECURE DEVELOPMENT SERVER ({INSECURE_FLAG}): "
            + "; ".join(reasons)
            + f"\nNever expose this to a network or put real data in it.\n{banner}",
            file=sys.stderr,
        )
    _serve(settings)
    return 0


def _serve(settings: Settings) -> None:
    import uvicorn

    from portal.app import create_app

    # uvicorn's access log is off: it logs raw paths, query strings and client addresses (the
    # login callback's query holds one-time codes); portal.web.accesslog logs route templates.
    # log_config=None: uvicorn's own lines go through the portal's handler (text or JSON).
    # proxy_headers=False: X-Forwarded-* are believed only from JOURPOST_TRUSTED_PROXIES, by the
    # app itself (portal.web.forwarded), however it is served.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        log_level="info",
        proxy_headers=False,
    )


async def _prepare(settings: Settings, *, seed_demo: bool) -> None:
    from portal.db import migrate
    from portal.db.engine import engine_from_settings, make_sessionmaker

    # No statement timeout: a migration (an index on a big table) or the demo's year of
    # synthetic reports may run long, and waiting for another migrator's lock is a statement.
    engine = engine_from_settings(settings, statement_timeout=0)
    try:
        await migrate.upgrade(engine)
        settings.object_root.mkdir(parents=True, exist_ok=True)
        if seed_demo:
            from portal.demo import seed, seed_rosters
            from portal.pii import Vault

            vault = Vault(settings.keks, settings.current_kek, settings.blind_index_key)
            async with make_sessionmaker(engine)() as db, db.begin():
                await seed(db, vault)
                await seed_rosters(db, vault)
            if settings.demo_activity:
                from portal.db.base import utcnow
                from portal.stats.synthetic import generate_year

                async with make_sessionmaker(engine)() as db, db.begin():
                    made = await generate_year(db, vault, now=utcnow())
                if made:
                    print(f"demo: {made} synthetic incident reports for the past year")
            from portal.db.base import utcnow as _now
            from portal.demo_night import seed_night

            async with make_sessionmaker(engine)() as db, db.begin():
                night = await seed_night(db, vault, now=_now())
            if any(night.values()):
                print(
                    "demo: tonight's data: {rosters} rosters, {advisories} advisories, "
                    "{decisions} decision awaiting signature, {assignments} open assignment, "
                    "{receipts} receipts".format(**night)
                )
    finally:
        await engine.dispose()


async def _db_check(settings: Settings) -> int:
    from portal.db import migrate
    from portal.db.engine import engine_from_settings

    engine = engine_from_settings(settings)
    try:
        current, head = await migrate.current_revision(engine), migrate.head_revision()
        if current != head:
            print(
                f"database at revision {current}, migrations at {head}: run `jourpost db upgrade`"
            )
            return 1
        diffs = await migrate.schema_differences(engine)
        if diffs:
            print("database schema differs from the models:")
            for d in diffs:
                print(f"  {d}")
            return 1
        print(f"database at {head}; schema matches the models")
        return 0
    finally:
        await engine.dispose()


async def _audit_verify(settings: Settings) -> int:
    from portal.app import build_runtime
    from portal.audit.anchor import verify_anchors
    from portal.audit.service import verify_chain

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            report = await verify_chain(db, parallel=True)
            anchors = await verify_anchors(db, runtime.object_store.store)
    finally:
        await runtime.engine.dispose()
    if not report.ok:
        print(f"audit log BROKEN at entry {report.first_bad_seq}: {report.problem}")
        return 1
    if anchors.first_bad_seq is not None:
        print(
            f"audit log REWRITTEN: entry {anchors.first_bad_seq} differs from its anchor "
            "in the object store"
        )
        return 1
    for segment in anchors.lost:
        print(
            f"entries {segment.first_seq}-{segment.last_seq} were lost in a restore from backup "
            f"(recorded {segment.recorded_at})"
        )
    if anchors.ends_at is not None:
        print(
            f"audit log SHORTER than its anchors: the database ends at entry {anchors.ends_at}, "
            f"but the object store proves entries up to {anchors.anchored_through} existed. "
            "Either the database was restored from a backup taken before then, or the newest "
            "entries were deleted. Check the backup log; if it was a restore, record it with "
            "`jourpost audit record-restore` (docs/operations.md)."
        )
        return 1
    print(f"audit log intact: {report.entries} entries, {anchors.anchors} anchors match")
    return 0


async def _audit_record_restore(settings: Settings) -> int:
    from portal.app import build_runtime
    from portal.audit.anchor import NothingToRecord, record_restore

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            segment = await record_restore(db, runtime.object_store.store)
    except NothingToRecord as exc:
        print(f"jourpost audit record-restore: nothing recorded: {exc}", file=sys.stderr)
        return 1
    finally:
        await runtime.engine.dispose()
    print(
        f"recorded: the database was restored; entries {segment.first_seq}-{segment.last_seq} "
        "are lost and will be reported as such by `jourpost audit verify`"
    )
    return 0


def _archive_export(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date, datetime, time, timedelta

    from portal.archive.cli import export_command
    from portal.timefmt import STOCKHOLM

    try:
        first = date.fromisoformat(args.date_from) if args.date_from else None
        last = date.fromisoformat(args.date_to) if args.date_to else None
    except ValueError:
        print("jourpost archive export: datum anges som ÅÅÅÅ-MM-DD", file=sys.stderr)
        return 2
    return asyncio.run(
        export_command(
            settings,
            org=args.org,
            since=datetime.combine(first, time(), STOCKHOLM) if first else None,
            until=datetime.combine(last + timedelta(days=1), time(), STOCKHOLM) if last else None,
            kinds=args.types,
            out=Path(args.out),
            pdf=not args.no_pdf,
        )
    )


def _portal_roots() -> list[Path]:
    """The portal's own signing roots, when a Jourpost configuration is present."""
    try:
        settings = load_settings()
    except SettingsError:
        return []
    roots = [Path(p) for p in settings.signing_trust_roots]
    dev_root = Path(settings.data_dir) / "pki" / "root.pem"
    if dev_root.exists():
        roots.append(dev_root)
    return roots


def _verify(path: str, trust: list[str], as_json: bool) -> int:
    import json

    from signing.errors import SigningError
    from signing.pki import load_certificate
    from signing.verify import verify_pdf

    try:
        roots = [load_certificate(Path(p)) for p in [*trust, *map(str, _portal_roots())]]
    except (OSError, ValueError, SigningError) as exc:
        print(f"jourpost verify: kan inte läsa rotcertifikat: {exc}", file=sys.stderr)
        return 2
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        print(f"jourpost verify: kan inte läsa {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(verify_pdf(data, trust_roots=roots))
    except Exception as exc:  # any file must get a verdict, never a traceback
        if as_json:
            print(json.dumps({"valid": False, "modified_after_signing": False, "signatures": []}))
        reason = (
            exc if isinstance(exc, SigningError) else f"kunde inte granskas ({type(exc).__name__})"
        )
        print(f"jourpost verify: {path}: INTE GILTIG: {reason}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        verdict = "GILTIG" if report.valid else "INTE GILTIG"
        print(f"{path}: {verdict}")
        if not report.signatures:
            print("  Inga underskrifter.")
        for signature in report.signatures:
            sig = signature.to_json()
            print(
                f"  {sig['signer_name']} ({sig['personal_identity_number'] or 'okänt pnr'}), "
                f"{sig['signed_at']}, PAdES {sig['pades_level']}, "
                f"{'oförändrad' if sig['intact'] else 'ÄNDRAD'}, "
                f"{'betrodd' if sig['trusted'] else 'INTE betrodd'}"
            )
            if signature.detail:  # the validator's own words (English), for the archivist
                print(f"    ({signature.detail})")
        if report.modified_after_signing:
            print("  Dokumentet har ändrats efter underskriften.")
    return 0 if report.valid else 1


async def _renew_timestamps(settings: Settings, *, force: bool, dry_run: bool) -> int:
    from portal.app import build_runtime

    runtime = build_runtime(settings)
    try:
        if runtime.signing is None:
            print("jourpost: signing is not configured (no signing CA / TSA)", file=sys.stderr)
            return 2
        from portal.decisions.signing import renew_timestamps

        async with runtime.sessionmaker() as db, db.begin():
            result = await renew_timestamps(
                db, runtime.object_store, runtime.signing, force=force, dry_run=dry_run
            )
        verb = "would renew" if dry_run else "renewed"
        print(
            f"{result.checked} signed decisions checked, {verb} {result.renewed} "
            f"({result.repaired} because they no longer verified offline), "
            f"{result.still_invalid} need attention"
        )
        return 1 if result.still_invalid else 0
    finally:
        await runtime.engine.dispose()


async def _reindex_names(settings: Settings) -> int:
    from portal.app import build_runtime
    from portal.lookup.service import reindex_names

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            advisories, reports, placements = await reindex_names(db, runtime.vault)
    finally:
        await runtime.engine.dispose()
    print(
        f"name index rebuilt: {advisories} advisories, {reports} reports, {placements} placements"
    )
    return 0


async def _storage_sweep(settings: Settings, *, dry_run: bool, grace_hours: float) -> int:
    from datetime import UTC, datetime, timedelta

    from portal.app import build_runtime
    from portal.sweep import sweep

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            report = await sweep(
                db,
                runtime.object_store.store,
                now=datetime.now(UTC),
                grace=timedelta(hours=grace_hours),
                dry_run=dry_run,
            )
    finally:
        await runtime.engine.dispose()
    verb = "would remove" if dry_run else "removed"
    print(
        f"{report.objects} objects, {report.rows} referenced by rows: {verb} "
        f"{len(report.removed)} orphans, {len(report.locked)} orphans locked, "
        f"{report.young} too new to judge, {len(report.missing)} missing"
    )
    for orphan in report.locked:
        until = orphan.retain_until.date().isoformat() if orphan.retain_until else "-"
        hold = ", legal hold" if orphan.legal_hold else ""
        print(f"  locked orphan {orphan.key} (retained until {until}{hold})")
    for key in report.missing:
        print(f"  MISSING {key}: a row names it but the store does not have it")
    return 1 if report.alarm else 0


async def _sweep_uploads(settings: Settings, *, dry_run: bool, hours: float) -> int:
    from datetime import UTC, datetime, timedelta

    from portal.attachments.store import build_file_store
    from portal.sweep import sweep_uploads

    report = await sweep_uploads(
        build_file_store(settings).store,
        now=datetime.now(UTC),
        max_age=timedelta(hours=hours),
        dry_run=dry_run,
    )
    verb = "would abort" if dry_run else "aborted"
    print(
        f"{verb} {len(report.aborted)} incomplete uploads started more than {hours:g} h ago, "
        f"{report.kept} younger kept"
    )
    for upload in report.aborted:
        print(f"  {upload.key} (started {upload.initiated.isoformat(timespec='seconds')})")
    return 0


async def _keys_rotate(settings: Settings) -> int:
    from portal.app import build_runtime
    from portal.keys.service import rotate

    runtime = build_runtime(settings)
    try:
        report = await rotate(runtime.sessionmaker, runtime.vault, runtime.object_store)
    finally:
        await runtime.engine.dispose()
    print(
        f"rotated to key {settings.current_kek!r}: {report.fields} database values re-encrypted, "
        f"{report.objects} file keys re-wrapped"
    )
    return 0


async def _jobs_once(settings: Settings) -> int:
    from portal import jobs
    from portal.db.engine import engine_from_settings, make_sessionmaker

    engine = engine_from_settings(settings)
    try:
        from datetime import timedelta

        from auth.sessions import SessionPolicy
        from portal.attachments.store import build_file_store
        from portal.pii import Vault

        policy = SessionPolicy(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
        )
        # The same purge as the server's loop: pending, ended and expired sessions.
        report = await jobs.run_once_report(
            make_sessionmaker(engine),
            build_file_store(settings).store,
            session_policy=policy,
            vault=Vault(settings.keks, settings.current_kek, settings.blind_index_key),
            upload_max_age=timedelta(hours=settings.upload_max_age_hours),
        )
    finally:
        await engine.dispose()
    for job in jobs.JOB_NAMES:
        if job in report.ran:
            print(f"{job}: {report.ran[job]} {JOB_UNITS.get(job, 'done')}")
        elif job in report.skipped:
            print(f"{job}: skipped (another instance is running it)")
    return 0


JOB_UNITS = {
    "purge_sessions": "sessions purged",
    "expiry_reminders": "reminders and notices queued",
    "audit_anchor": "anchors written",
    "abort_uploads": "incomplete uploads aborted",
}
"""What `jobs run-once` counts per job (a job not named here prints "done")."""


def _print_demo_banner(settings: Settings) -> None:
    from portal.demo import DEMO_PERSONS

    print(f"\nJourpost demo: {settings.public_url}/")
    print("Logga in med BankID-simulatorn som någon av de fiktiva demopersonerna:")
    for p in DEMO_PERSONS:
        print(f"  {p.personnummer}  {p.name:<18} {p.role.label}, {p.organisation}")
    print(f"E-post skickas inte i demon; meddelandena visas på {settings.public_url}/dev-mail")
    print("Avsluta med Ctrl+C.\n", flush=True)


def _data_settings(data: Path) -> Settings:
    """The settings `jourpost demo --data DIR` runs with (SQLite, files and keys under DIR), for
    the commands that work on a demo's data; refuses a directory the demo never prepared."""
    from portal.demo import demo_settings

    if not (data / "secrets.toml").is_file():
        raise SettingsError(
            f"{data} holds no demo data (no secrets.toml): run `jourpost demo --data {data}` first"
        )
    return demo_settings(data, "127.0.0.1", 8000)


def main(argv: Sequence[str] | None = None) -> int:
    # pyHanko logs each failed validation step (routine: long-term validation tries the current
    # time before the past) with a traceback and the signer certificate's subject — the chair's
    # name and personnummer. Every command that verifies (verify, archive export,
    # renew-timestamps) prints its own verdict instead. (The server's LoggingConfig does the same.)
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="jourpost", description="Jourpost portal")
    # Commands that work on the database take --data DIR: a demo's data, no JOURPOST_* needed.
    on_data = argparse.ArgumentParser(add_help=False)
    on_data.add_argument(
        "--data", metavar="DIR", help="work on the data of `jourpost demo --data DIR`"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="run the demo (SQLite, files on disk, dev identity provider)"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data", default="./var/demo", help="directory for the demo's data")
    demo.add_argument("--no-serve", action="store_true", help="prepare the data and exit")
    serve = sub.add_parser(
        "serve", help="run the portal with configuration from JOURPOST_* / TOML (production)"
    )
    serve.add_argument(
        INSECURE_FLAG,
        action="store_true",
        help="allow the development identity provider, http and non-production modes "
        "(INSECURE: only on a machine no one else can reach)",
    )
    storage = sub.add_parser("storage", help="the object store against the database")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    sweep = storage_sub.add_parser(
        "sweep",
        parents=[on_data],
        help="delete orphaned objects past the grace period; exit 1 if a row's object is missing",
    )
    sweep.add_argument("--dry-run", action="store_true", help="only report")
    sweep.add_argument("--grace-hours", type=float, default=24.0, help="default 24")
    uploads = storage_sub.add_parser(
        "sweep-uploads",
        parents=[on_data],
        help="abort incomplete uploads (S3 multipart uploads, temporary files) left by an "
        "instance killed mid-upload",
    )
    uploads.add_argument("--dry-run", action="store_true", help="only report")
    uploads.add_argument(
        "--older-than-hours",
        type=float,
        default=None,
        help="default JOURPOST_UPLOAD_MAX_AGE_HOURS (24)",
    )
    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser(
        "upgrade", parents=[on_data], help="migrate the database to the newest schema"
    )
    db_sub.add_parser(
        "check",
        parents=[on_data],
        help="exit 1 unless the database is migrated and matches the models",
    )
    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser(
        "record-restore",
        parents=[on_data],
        help="acknowledge that the database was restored from a backup (after checking)",
    )
    audit_sub.add_parser(
        "verify", parents=[on_data], help="exit 1 and name the first bad entry if broken"
    )
    verify = sub.add_parser("verify", help="verify the signatures of a PDF (exit 0 if valid)")
    verify.add_argument("file")
    verify.add_argument("--json", action="store_true", help="the DESIGN.md §7 JSON report")
    verify.add_argument("--trust", action="append", default=[], metavar="ROOT.pem")
    archive = sub.add_parser("archive", help="archive maintenance")
    archive_sub = archive.add_subparsers(dest="archive_command", required=True)
    renew = archive_sub.add_parser(
        "renew-timestamps",
        parents=[on_data],
        help="add a fresh document timestamp before the TSA certificate expires",
    )
    renew.add_argument("--force", action="store_true", help="renew every signed decision")
    renew.add_argument("--dry-run", action="store_true", help="only report what would be renewed")
    export = archive_sub.add_parser(
        "export",
        parents=[on_data],
        help="write an organisation's records as an E-ARK SIP (FGS 2.0) zip",
    )
    export.add_argument("--org", required=True, help="organisation name or id")
    export.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (Stockholm)")
    export.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (inclusive)")
    export.add_argument(
        "--type",
        dest="types",
        action="append",
        choices=["advisory", "report", "decision", "roster"],
    )
    export.add_argument("--out", required=True, help="the zip file to write")
    export.add_argument(
        "--no-pdf", action="store_true", help="leave out the PDF/A rendition of each record"
    )
    retention = sub.add_parser("retention", help="retention (gallring) by the rules")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser(
        "run", parents=[on_data], help="cull every record that is due (see --dry-run)"
    )
    run.add_argument("--dry-run", action="store_true", help="only report what would be culled")
    run.add_argument("--json", action="store_true", help="the report as JSON")
    keys = sub.add_parser("keys", help="key-encryption keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate",
        parents=[on_data],
        help="re-wrap every file key and re-encrypt every field under JOURPOST_CURRENT_KEK",
    )
    lookup = sub.add_parser("lookup", help="the person lookup")
    lookup_sub = lookup.add_subparsers(dest="lookup_command", required=True)
    lookup_sub.add_parser(
        "reindex-names",
        parents=[on_data],
        help="rebuild the name index (records written before it existed; idempotent)",
    )
    jobs_parser = sub.add_parser("jobs", help="periodic jobs")
    jobs_sub = jobs_parser.add_subparsers(dest="jobs_command", required=True)
    jobs_sub.add_parser(
        "run-once",
        parents=[on_data],
        help="run the periodic jobs once (session purge, expiry reminders, audit anchor, "
        "incomplete uploads), for cron",
    )
    args = parser.parse_args(argv)

    if args.command == "verify":  # needs no configuration at all
        return _verify(args.file, args.trust, args.json)

    try:
        if args.command == "demo":
            from portal.demo import demo_settings

            settings = demo_settings(Path(args.data), args.host, args.port)
            configure_cli(settings.log_format)
            asyncio.run(_prepare(settings, seed_demo=True))
            if args.no_serve:
                return 0
            _print_demo_banner(settings)
            _serve(settings)
            return 0
        data = getattr(args, "data", None)
        settings = _data_settings(Path(data)) if data else load_settings()
        configure_cli(settings.log_format)  # text or one JSON object per line, on stderr
        if args.command == "serve":
            return _guarded_serve(settings, insecure=args.insecure_development)
        if args.command == "jobs":
            return asyncio.run(_jobs_once(settings))
        if args.command == "storage" and args.storage_command == "sweep-uploads":
            hours = args.older_than_hours
            if hours is None:
                hours = settings.upload_max_age_hours
            if hours <= 0:  # 0 would abort uploads still in progress
                print("--older-than-hours must be above 0", file=sys.stderr)
                return 2
            return asyncio.run(_sweep_uploads(settings, dry_run=args.dry_run, hours=hours))
        if args.command == "storage":
            return asyncio.run(
                _storage_sweep(settings, dry_run=args.dry_run, grace_hours=args.grace_hours)
            )
        if args.command == "keys":
            return asyncio.run(_keys_rotate(settings))
        if args.command == "lookup":
            return asyncio.run(_reindex_names(settings))
        if args.command == "retention":
            from portal.retention.cli import run_command

            return asyncio.run(run_command(settings, dry_run=args.dry_run, as_json=args.json))
        if args.command == "archive" and args.archive_command == "export":
            return _archive_export(settings, args)
        if args.command == "archive":
            return asyncio.run(_renew_timestamps(settings, force=args.force, dry_run=args.dry_run))
        if args.command == "audit" and args.audit_command == "record-restore":
            return asyncio.run(_audit_record_restore(settings))
        if args.command == "audit":
            return asyncio.run(_audit_verify(settings))
        if args.db_command == "upgrade":
            asyncio.run(_prepare(settings, seed_demo=False))
            print("database upgraded")
            return 0
        return asyncio.run(_db_check(settings))
    except SettingsError as exc:
        print(f"jourpost: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
