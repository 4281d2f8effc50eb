"""The exchange and signing flows end to end over HTTP with the files in a real S3 server
(SeaweedFS, object lock on): the production storage path, built from the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from minio.error import S3Error

from tests.portal.advisories.helpers import BOY, HANNA, JONNA, body, pdf_bytes
from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import OLOF, draft_body, jour_client, roster_with_olof
from tests.portal.login import csrf_form, login, through_idp
from tests.portal.sessions import client_as
from tests.servers.seaweedfs import SeaweedFS


def _objects(seaweed: SeaweedFS, portal: RunningPortal) -> list[tuple[str, str | None]]:
    client = seaweed.client()
    return [
        (o.object_name or "", o.version_id)
        for o in client.list_objects(
            portal.settings.s3_bucket, recursive=True, include_version=True
        )
    ]


def test_advisory_attachment_round_trip_through_s3(
    portal_s3: RunningPortal, seaweed: SeaweedFS
) -> None:
    hanna = client_as(portal_s3.url, portal_s3.settings, HANNA)
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    created = hanna.post("/api/v1/advisories", json=body(valid_until=until))
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    pdf = pdf_bytes("Plan för natten", padding=3 * 1024 * 1024)  # several 1 MiB segments
    up = hanna.post(
        f"/api/v1/advisories/{aid}/attachments",
        files={"attachments": ("plan.pdf", pdf, "application/pdf")},
    )
    assert up.status_code in (200, 201), up.text

    stored = [o for o in _objects(seaweed, portal_s3) if o[0].startswith("attachments/")]
    assert len(stored) == 1
    name, version = stored[0]
    raw = seaweed.client().get_object(portal_s3.settings.s3_bucket, name, version_id=version)
    ciphertext = raw.read()
    raw.close()
    assert pdf[:2048] not in ciphertext and b"Plan f" not in ciphertext  # encrypted at rest

    jonna = client_as(portal_s3.url, portal_s3.settings, JONNA)
    doc = jonna.get(f"/api/v1/advisories/{aid}").json()
    (attachment,) = doc["attachments"]
    got = jonna.get(f"/api/v1/advisories/{aid}/attachments/{attachment['id']}")
    assert got.status_code == 200 and got.content == pdf
    found = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY})
    assert found.status_code == 200 and aid in found.text


def test_signed_decision_is_locked_in_s3(portal_s3: RunningPortal, seaweed: SeaweedFS) -> None:
    known = roster_with_olof(portal_s3)
    jonna = jour_client(portal_s3)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    olof, _ = login(portal_s3.url, OLOF)
    start = olof.post(f"/decisions/{d['id']}/sign", data=csrf_form(olof))
    done = through_idp(olof, start.headers["location"], OLOF)
    assert done.headers["location"] == f"/decisions/{d['id']}/sign"
    signed = olof.get(f"/decisions/{d['id']}/signed.pdf")
    assert signed.status_code == 200 and signed.content.startswith(b"%PDF-")

    client = seaweed.client()
    bucket = portal_s3.settings.s3_bucket
    (name, version) = next(o for o in _objects(seaweed, portal_s3) if "decisions/" in o[0])
    retention = client.get_object_retention(bucket, name, version_id=version)
    assert retention is not None and retention.mode == "COMPLIANCE"
    assert retention.retain_until_date is not None
    assert retention.retain_until_date > datetime.now(UTC) + timedelta(days=365 * 9)
    with pytest.raises(S3Error):
        client.remove_object(bucket, name, version_id=version)
    again = olof.get(f"/decisions/{d['id']}/signed.pdf")
    assert again.content == signed.content
