"""The chair signs on a phone: step-up at the dev identity provider (prompt=login, login_hint,
signRequest), PAdES-B-LTA with the dev TSA/OCSP, stored with retention, delivered, verified."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pyhanko.pdf_utils.reader import PdfFileReader

from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    ANDERS,
    EVA,
    HANNA,
    OLOF,
    draft_body,
    jour_client,
    roster_with_olof,
)
from tests.portal.login import csrf_form, login, submit_idp_page, through_idp
from tests.portal.sessions import client_as

PHONE = {"user-agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"}


def _awaiting(portal: RunningPortal) -> str:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    return str(d["id"])


def test_chair_signs_and_the_municipality_gets_a_valid_b_lta(portal: RunningPortal) -> None:
    decision_id = _awaiting(portal)
    olof, _ = login(portal.url, OLOF)
    olof.headers.update(PHONE)
    start_page = olof.get("/").text
    assert (
        "Väntar på din underskrift" in start_page and f"/decisions/{decision_id}/sign" in start_page
    )
    page = olof.get(f"/decisions/{decision_id}/sign")
    assert page.status_code == 200 and "Skriv under med e-legitimation" in page.text
    # No inline script (CSP); the only script is the session-timeout warning from /static.
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert "Pojke Testsson" in page.text
    assert scripts == ['<script src="/static/js/session-timeout.js" defer>']

    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    assert start.status_code == 303
    # The personnummer hint and the signRequest are pushed (RFC 9126), never in the URL.
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert set(query) == {"client_id", "request_uri"} and OLOF not in start.headers["location"]
    idp_page = olof.get(start.headers["location"])
    assert "Jag undertecknar beslut om omedelbart omhändertagande enligt 6 § LVU" in idp_page.text
    assert 'aria-current="true">Olof Ordén' in idp_page.text  # the pushed hint arrived

    done = submit_idp_page(olof, idp_page, OLOF)
    assert done.status_code in (302, 303), done.text
    assert done.headers["location"] == f"/decisions/{decision_id}/sign"
    after = olof.get(done.headers["location"])
    assert "har levererats till kommunen" in after.text

    hanna = client_as(portal.url, portal.settings, HANNA)
    listed = hanna.get("/api/v1/decisions").json()
    assert [d["status"] for d in listed if d["id"] == decision_id] == ["delivered"]
    signed = hanna.get(f"/decisions/{decision_id}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")

    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    report = asyncio.run(verify_pdf(signed.content, trust_roots=[root])).to_json()
    assert report["valid"] is True, report
    [sig] = report["signatures"]
    assert sig["personal_identity_number"] == OLOF and sig["signer_name"] == "Olof Ordén"
    assert sig["pades_level"] == "B-LTA"

    # The callback replayed (a double click, a back button) creates no second signature.
    replay = olof.get(f"/auth/callback?{urlsplit(done.request.url.__str__()).query}")
    assert replay.status_code in (302, 303, 403)
    again = hanna.get(f"/decisions/{decision_id}/signed.pdf").content
    assert again == signed.content
    assert len(PdfFileReader(io.BytesIO(again)).embedded_regular_signatures) == 1


def test_another_person_at_the_identity_provider_is_refused(portal: RunningPortal) -> None:
    decision_id = _awaiting(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    refused = through_idp(olof, start.headers["location"], EVA)
    assert refused.status_code == 403
    assert "annan person än beslutsfattaren" in refused.text
    jonna = jour_client(portal)
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "awaiting_signature"


def test_only_the_decision_maker_may_start_signing(portal: RunningPortal) -> None:
    decision_id = _awaiting(portal)
    eva, _ = login(portal.url, EVA)
    r = eva.post(f"/decisions/{decision_id}/sign", data=csrf_form(eva))
    assert r.status_code == 403
    assert "Endast den som fattade beslutet" in r.text


def test_unreachable_timestamp_authority_signs_nothing_and_can_be_retried(
    portal: RunningPortal,
) -> None:
    from dataclasses import replace

    decision_id = _awaiting(portal)
    state = portal.app.state.portal
    working = state.signing
    state.signing = replace(working, timestamp_url="http://127.0.0.1:9/tsa")
    try:
        olof, _ = login(portal.url, OLOF)
        start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
        failed = through_idp(olof, start.headers["location"], OLOF)
        assert failed.status_code == 503
        assert "inget har skrivits under" in failed.text
    finally:
        state.signing = working
    jonna = jour_client(portal)
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "awaiting_signature"
    assert olof.get(f"/decisions/{decision_id}/signed.pdf").status_code == 404
    retry = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    ok = through_idp(olof, retry.headers["location"], OLOF)
    assert ok.headers["location"] == f"/decisions/{decision_id}/sign"
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "delivered"


def test_renew_timestamps_adds_a_document_timestamp_and_keeps_it_valid(
    portal: RunningPortal,
) -> None:
    from portal.app import build_runtime
    from portal.decisions.signing import renew_timestamps

    decision_id = _awaiting(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    through_idp(olof, start.headers["location"], OLOF)
    before = olof.get(f"/decisions/{decision_id}/signed.pdf").content

    async def renew(**kw: bool) -> tuple[int, int, int, int]:
        runtime = build_runtime(portal.settings)
        try:
            async with runtime.sessionmaker() as db, db.begin():
                r = await renew_timestamps(db, runtime.object_store, runtime.signing, **kw)
                return r.checked, r.renewed, r.repaired, r.still_invalid
        finally:
            await runtime.engine.dispose()

    assert asyncio.run(renew()) == (1, 0, 0, 0)  # valid, and years from expiry
    assert asyncio.run(renew(force=True, dry_run=True)) == (1, 1, 0, 0)
    assert olof.get(f"/decisions/{decision_id}/signed.pdf").content == before
    assert asyncio.run(renew(force=True)) == (1, 1, 0, 0)
    after = olof.get(f"/decisions/{decision_id}/signed.pdf").content
    assert after.startswith(before)  # an incremental update: the signed bytes are untouched
    reader = PdfFileReader(io.BytesIO(after))
    assert len(reader.embedded_timestamp_signatures) == 2
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    assert asyncio.run(verify_pdf(after, trust_roots=[root])).valid


def test_sending_for_signature_notifies_the_chair_without_content(portal: RunningPortal) -> None:
    """The chair is told at once that a decision awaits, by e-mail, with nothing about the case."""
    from sqlalchemy import select

    from portal.db.engine import make_engine, make_sessionmaker
    from portal.notify.models import OutboxMail
    from portal.notify.service import compose

    decision_id = _awaiting(portal)

    async def outbox() -> list[OutboxMail]:
        engine = make_engine(portal.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                return list(await db.scalars(select(OutboxMail)))
        finally:
            await engine.dispose()

    (mail,) = [m for m in asyncio.run(outbox()) if m.template == "sign_request"]
    assert mail.to_addr == "olof@hudiksvall.kommun.example"
    assert mail.link_path == f"/decisions/{decision_id}/sign"
    message = compose(mail, public_url=portal.url).as_string()
    assert "väntar på din underskrift" in compose(mail, public_url=portal.url).get_content()
    for secret in ("Pojke", "Testsson", "201103059893", "LVU", "berusad", "Olof"):
        assert secret not in message, secret


def test_verification_page_reports_like_the_command(portal: RunningPortal) -> None:
    decision_id = _awaiting(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    through_idp(olof, start.headers["location"], OLOF)
    signed = olof.get(f"/decisions/{decision_id}/signed.pdf").content

    anders = client_as(portal.url, portal.settings, ANDERS)
    form = anders.get("/verify")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    csrf = {"_csrf_token": anders.cookies["csrftoken"]}
    ok = anders.post(
        "/verify", data=csrf, files={"file": ("beslut.pdf", signed, "application/pdf")}
    )
    assert ok.status_code == 200
    assert "<strong>Giltig</strong>" in ok.text and "PAdES B-LTA" in ok.text
    assert OLOF in ok.text and "Olof Ordén" in ok.text
    tampered = signed + b"\n% efterhandstillagg\n"
    bad = anders.post(
        "/verify", data=csrf, files={"file": ("beslut.pdf", tampered, "application/pdf")}
    )
    assert "Inte giltig" in bad.text and "ändrats efter underskriften" in bad.text
    junk = anders.post(
        "/verify", data=csrf, files={"file": ("x.pdf", b"MZ\x90", "application/pdf")}
    )
    assert junk.status_code == 422 and "Välj en PDF-fil" in junk.text


def test_a_signer_whose_role_is_revoked_mid_signing_cannot_finish(portal: RunningPortal) -> None:
    import re
    from datetime import UTC, datetime, timedelta

    from tests.portal.decisions.helpers import ids

    known = ids(portal)
    now = datetime.now(UTC)
    hanna = client_as(portal.url, portal.settings, HANNA)
    roster = hanna.post(
        "/api/v1/rosters",
        json={
            "municipality_id": str(known["Hudiksvall"]),
            "entries": [
                {
                    "user_id": str(known[EVA]),
                    "function": "substitute",
                    "position": 1,
                    "valid_from": (now - timedelta(hours=2)).isoformat(),
                    "valid_to": (now + timedelta(days=7)).isoformat(),
                    "phone": "070-000 00 02",
                }
            ],
        },
    )
    assert roster.status_code == 201, roster.text
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known, decision_maker_id=str(known[EVA])))
    assert d.status_code == 201, d.text
    decision_id = d.json()["id"]
    assert jonna.post(f"/api/v1/decisions/{decision_id}/submit").status_code == 200

    eva, _ = login(portal.url, EVA)
    start = eva.post(f"/decisions/{decision_id}/sign", data=csrf_form(eva))
    assert start.status_code == 303
    # While she is at the identity provider, the admin revokes her only role.
    ada, _ = login(portal.url, "197512189882")
    users = ada.get("/admin/users").text
    link = re.search(r'href="(/admin/users/[0-9a-f-]+)">Eva Ersson<', users)
    assert link
    revoke = re.search(r'action="(/admin/memberships/[0-9a-f-]+/revoke)"', ada.get(link[1]).text)
    assert (
        revoke and ada.post(revoke[1], data={**csrf_form(ada), "confirm": "yes"}).status_code == 303
    )

    finished = through_idp(eva, start.headers["location"], EVA)
    assert finished.status_code == 403, finished.text
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "awaiting_signature"
    assert hanna.get(f"/api/v1/decisions/{decision_id}/signed.pdf").status_code == 404


class _DiesAfterStoring:
    """The object store of an instance that dies right after the signed PDF was stored (before
    the database transaction commits): the object is there, the row never says so."""

    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    async def put(self, key: str, chunks: object, **kw: object) -> object:
        await self._real.put(key, chunks, **kw)  # type: ignore[attr-defined]
        raise RuntimeError("the instance died here")


def test_a_crash_after_storing_the_signed_pdf_does_not_brick_the_decision(
    portal: RunningPortal,
) -> None:
    decision_id = _awaiting(portal)
    state = portal.app.state.portal
    real = state.object_store
    olof, _ = login(portal.url, OLOF)
    state.object_store = _DiesAfterStoring(real)
    try:
        start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
        died = through_idp(olof, start.headers["location"], OLOF)
        assert died.status_code == 500
    finally:
        state.object_store = real
    jonna = jour_client(portal)
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "awaiting_signature"
    # The stored object is locked under retention; a retry must not trip over it.
    retry = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    ok = through_idp(olof, retry.headers["location"], OLOF)
    assert ok.status_code in (302, 303), ok.text
    assert jonna.get(f"/api/v1/decisions/{decision_id}").json()["status"] == "delivered"
    signed = olof.get(f"/decisions/{decision_id}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")


def test_cancelling_at_the_provider_says_so_and_offers_to_try_again(portal: RunningPortal) -> None:
    from tests.portal.advisories.helpers import audit_entries
    from tests.servers.forms import form_with_field

    decision_id = _awaiting(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    idp_page = olof.get(start.headers["location"])
    form = form_with_field(idp_page.text, str(idp_page.url), "personal_identity_number")
    answer = olof.post(form.action, data={**form.fields, "action": "cancel"})
    while answer.status_code in (302, 303) and "/auth/callback" not in answer.headers["location"]:
        answer = olof.get(answer.headers["location"])
    cancelled = olof.get(answer.headers["location"])

    assert cancelled.status_code == 409
    assert (
        "Underskriften avbröts" in cancelled.text and "Du avbröt legitimeringen" in cancelled.text
    )
    assert "kunde inte verifieras" not in cancelled.text
    assert (
        f'<a class="button" href="/decisions/{decision_id}/sign">Försök igen</a>' in cancelled.text
    )
    status = olof.get(f"/api/v1/decisions/{decision_id}").json()["status"]
    assert status == "awaiting_signature"
    outcomes = [e.outcome for e in audit_entries(portal.settings, "decision.sign")]
    assert outcomes == ["cancelled"]

    # Trying again from the offered link signs.
    again = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
    done = through_idp(olof, again.headers["location"], OLOF)
    assert done.status_code in (302, 303), done.text
    assert olof.get(f"/api/v1/decisions/{decision_id}").json()["status"] in ("signed", "delivered")
