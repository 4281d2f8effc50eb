"""The chair's approval of a police request goes through the same step-up as a chair decision:
prompt=login at the identity provider, bound to the document's digest; the identity must be
the chair's; a cancel says so and offers to try again; the signed PDF carries the verified
identity; everything audited."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.pki import load_certificate
from signing.verify import verify_pdf
from tests.portal.advisories.helpers import EVA, JONNA, OLOF, audit_entries
from tests.portal.conftest import RunningPortal
from tests.portal.login import csrf_form, login, submit_idp_page, through_idp
from tests.portal.police.helpers import awaiting_chair
from tests.portal.sessions import client_as


def _status(jonna: httpx.Client, rid: str) -> str:
    return str(jonna.get(f"/api/v1/police-requests/{rid}").json()["request"]["status"])


def test_the_chair_signs_after_a_step_up_in_the_verified_name(portal: RunningPortal) -> None:
    rid = awaiting_chair(portal)
    jonna = client_as(portal.url, portal.settings, JONNA)
    olof, _ = login(portal.url, OLOF)
    # The API starts the step-up too, and signs nothing by itself.
    started = olof.post(
        f"/api/v1/police-requests/{rid}/approve",
        headers={"X-CSRFToken": csrf_form(olof)["_csrf_token"]},
    )
    assert started.status_code == 200, started.text
    url = started.json()["identity_provider_url"]
    # Pushed (RFC 9126): no personnummer in the URL.
    assert set(parse_qs(urlsplit(url).query)) == {"client_id", "request_uri"} and OLOF not in url
    assert _status(jonna, rid) == "awaiting_chair"
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").status_code == 404

    idp_page = olof.get(url)
    assert "Jag beslutar och undertecknar begäran om handräckning enligt 43 § LVU" in idp_page.text
    assert 'aria-current="true">Olof Ordén' in idp_page.text  # the pushed login_hint arrived
    done = submit_idp_page(olof, idp_page, OLOF)
    assert done.status_code in (302, 303), done.text
    assert done.headers["location"] == f"/police-requests/{rid}?saved=1"
    assert "Hämta underskriven begäran (PDF)" in olof.get(done.headers["location"]).text
    assert _status(jonna, rid) == "signed"

    pdf = jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").content
    root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
    report = asyncio.run(verify_pdf(pdf, trust_roots=[root])).to_json()
    assert report["valid"] is True, report
    [sig] = report["signatures"]
    assert sig["personal_identity_number"] == OLOF and sig["signer_name"] == "Olof Ordén"
    assert sig["pades_level"] == "B-LTA"
    [approved] = audit_entries(portal.settings, "police_request.approve")
    assert approved.outcome == "ok" and approved.details["acr"] and approved.details["step_up"]
    assert approved.object_id == rid

    # The callback replayed (back button, double click) signs nothing again.
    replay = olof.get(f"/auth/callback?{urlsplit(str(done.request.url)).query}")
    assert replay.status_code in (302, 303, 403)
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").content == pdf
    assert len(PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures) == 1


def test_another_person_at_the_identity_provider_is_refused(portal: RunningPortal) -> None:
    rid = awaiting_chair(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    assert start.status_code == 303
    refused = through_idp(olof, start.headers["location"], EVA)  # Eva is a chair too
    assert refused.status_code == 403
    assert "annan person än ordföranden" in refused.text
    jonna = client_as(portal.url, portal.settings, JONNA)
    assert _status(jonna, rid) == "awaiting_chair"
    [denied] = audit_entries(portal.settings, "police_request.approve")
    assert denied.outcome == "denied" and denied.details == {"reason": "other_person"}


def test_only_a_chair_of_the_municipality_may_start(portal: RunningPortal) -> None:
    rid = awaiting_chair(portal)
    jonna, _ = login(portal.url, JONNA)
    r = jonna.post(f"/police-requests/{rid}/approve", data=csrf_form(jonna))
    assert r.status_code == 403 and "Bara kommunens ordförande" in r.text


def test_cancelling_at_the_provider_says_so_and_offers_to_try_again(portal: RunningPortal) -> None:
    from tests.servers.forms import form_with_field

    rid = awaiting_chair(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
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
    assert f'<a class="button" href="/police-requests/{rid}">Försök igen</a>' in cancelled.text
    jonna = client_as(portal.url, portal.settings, JONNA)
    assert _status(jonna, rid) == "awaiting_chair"
    assert [e.outcome for e in audit_entries(portal.settings, "police_request.approve")] == [
        "cancelled"
    ]

    again = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    done = through_idp(olof, again.headers["location"], OLOF)
    assert done.headers["location"] == f"/police-requests/{rid}?saved=1", done.text
    assert _status(jonna, rid) == "signed"


def test_a_request_revoked_during_the_step_up_is_not_signed(portal: RunningPortal) -> None:
    rid = awaiting_chair(portal)
    olof, _ = login(portal.url, OLOF)
    start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    jonna = client_as(portal.url, portal.settings, JONNA)
    revoked = jonna.post(f"/api/v1/police-requests/{rid}/status", json={"status": "revoked"})
    assert revoked.status_code == 200, revoked.text
    late = through_idp(olof, start.headers["location"], OLOF)
    assert late.status_code == 409 and "väntar inte på ordförandens beslut" in late.text
    assert _status(jonna, rid) == "revoked"
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").status_code == 404


def test_the_chair_approves_with_a_step_up_at_oidc_provider(
    database_url: str, tmp_path: Path
) -> None:
    """At an independent provider (no signRequest: the nonce carries the digest) the signature
    carries the identity the provider verified: its name for Olof is "Testa Testsson"."""
    from tests.portal.conftest import portal_at_oidc_provider
    from tests.portal.decisions.test_signing_oidc_provider import _through_op

    with portal_at_oidc_provider(database_url, tmp_path, user_pnr=OLOF) as portal:
        rid = awaiting_chair(portal)
        olof = httpx.Client(
            base_url=portal.url, follow_redirects=False, timeout=30, headers={"Origin": portal.url}
        )
        logged_in = _through_op(olof, olof.get("/auth/login").headers["location"])
        assert logged_in.status_code in (302, 303), logged_in.text
        start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
        assert start.status_code == 303
        done = _through_op(olof, start.headers["location"])
        assert done.headers["location"] == f"/police-requests/{rid}?saved=1", done.text
        pdf = olof.get(f"/police-requests/{rid}/signed.pdf").content
        root = load_certificate(Path(portal.settings.data_dir) / "pki" / "root.pem")
        report = asyncio.run(verify_pdf(pdf, trust_roots=[root])).to_json()
        assert report["valid"] is True, report
        [sig] = report["signatures"]
        assert sig["personal_identity_number"] == OLOF and sig["signer_name"] == "Testa Testsson"


def test_an_unreachable_timestamp_authority_signs_nothing_and_can_be_retried(
    portal: RunningPortal,
) -> None:
    from dataclasses import replace

    rid = awaiting_chair(portal)
    jonna = client_as(portal.url, portal.settings, JONNA)
    olof, _ = login(portal.url, OLOF)
    state = portal.app.state.portal
    working = state.signing
    state.signing = replace(working, timestamp_url="http://127.0.0.1:9/tsa")
    try:
        start = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
        failed = through_idp(olof, start.headers["location"], OLOF)
        assert failed.status_code == 503 and "inget har skrivits under" in failed.text
    finally:
        state.signing = working
    assert _status(jonna, rid) == "awaiting_chair"
    assert jonna.get(f"/api/v1/police-requests/{rid}/signed.pdf").status_code == 404
    retry = olof.post(f"/police-requests/{rid}/approve", data=csrf_form(olof))
    ok = through_idp(olof, retry.headers["location"], OLOF)
    assert ok.headers["location"] == f"/police-requests/{rid}?saved=1", ok.text
    assert _status(jonna, rid) == "signed"
