"""Personnummer lookup: active and recently expired advisories, tenancy, audit, bad input."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.portal.advisories.conftest import AdvisoryPortal
from tests.portal.advisories.helpers import (
    BOY,
    BOY17,
    GUNILLA,
    HANNA,
    JONNA,
    OLOF,
    OTHER_HANDLER,
    OTHER_JOUR_STAFF,
    add_second_jour,
    audit_entries,
    body,
    expire,
    run,
)


def _post(client: object, pnr: str, plan: str) -> str:
    subjects = [{"personal_identity_number": pnr, "name": "Kalle Klient"}]
    r = client.post("/api/v1/advisories", json=body(subjects=subjects, plan=plan))  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_lookup_finds_active_and_recently_expired_of_own_jour_only(jp: AdvisoryPortal) -> None:
    add_second_jour(jp.settings)
    hanna, gunilla = jp.client(HANNA), jp.client(GUNILLA)
    active = _post(hanna, BOY, "Aktiv plan")
    recent = _post(gunilla, BOY, "Gick ut i förra veckan")
    old = _post(hanna, BOY, "Gick ut för länge sedan")
    _post(hanna, BOY17, "Annan person")
    elsewhere = _post(jp.client(OTHER_HANDLER), BOY, "Annan jour")
    withdrawn = _post(hanna, BOY, "Återkallad")
    assert (
        hanna.post(f"/api/v1/advisories/{withdrawn}/withdraw", json={"reason": "Fel"}).status_code
        == 204
    )
    expire(jp.settings, recent, timedelta(days=6))
    expire(jp.settings, old, timedelta(days=45))

    jonna = jp.client(JONNA)
    r = jonna.post("/api/v1/lookup", json={"personal_identity_number": "20110305-9893"})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["personal_identity_number"] == BOY
    assert [(a["id"], a["expired"]) for a in found["advisories"]] == [
        (active, False),
        (recent, True),
    ]
    assert found["reports"] == [] and found["decisions"] == []

    # The other jour sees only its own municipality's advisory; a handler only their own.
    other = jp.client(OTHER_JOUR_STAFF).post(
        "/api/v1/lookup", json={"personal_identity_number": BOY}
    )
    assert [a["id"] for a in other.json()["advisories"]] == [elsewhere]
    mine = gunilla.post("/api/v1/lookup", json={"personal_identity_number": BOY})
    assert [a["id"] for a in mine.json()["advisories"]] == [recent]

    # Audited with the blind index, never the number.
    entries = audit_entries(jp.settings, "lookup")
    assert len(entries) == 3
    assert all(BOY not in str(e.details) and BOY not in str(e.object_id) for e in entries)
    assert entries[0].object_type == "person" and len(entries[0].object_id or "") == 64
    assert entries[0].details["advisories"] == [active, recent]


def test_lookup_page_posts_and_shows_warnings(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    recent = _post(hanna, BOY, "Plan")
    expire(jp.settings, recent, timedelta(days=2))
    assert jonna.get("/lookup").status_code == 200
    r = jonna.post(
        "/lookup",
        data={"personal_identity_number": "110305-9893", "_csrf_token": jonna.cookies["csrftoken"]},
    )
    assert r.status_code == 200
    assert "Resultat för 20110305-9893" in r.text and "Utgången" in r.text
    assert f'href="/advisories/{recent}"' in r.text
    # No GET search: the number never goes in a URL.
    assert jonna.get("/lookup", params={"personal_identity_number": BOY}).text.count(BOY) == 0


def test_invalid_number_and_roles_without_lookup(jp: AdvisoryPortal) -> None:
    jonna = jp.client(JONNA)
    r = jonna.post("/api/v1/lookup", json={"personal_identity_number": "20110305-9890"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "personal_identity_number"
    page = jonna.post(
        "/lookup",
        data={"personal_identity_number": "12345", "_csrf_token": jonna.cookies["csrftoken"]},
    )
    assert page.status_code == 422
    assert "Ange ett giltigt person- eller samordningsnummer" in page.text
    assert 'aria-invalid="true"' in page.text
    assert audit_entries(jp.settings, "lookup") == []
    chair = jp.client(OLOF).post("/api/v1/lookup", json={"personal_identity_number": BOY})
    assert chair.status_code == 403
    assert [e.outcome for e in audit_entries(jp.settings, "lookup")] == ["denied"]


def test_coordination_number_is_accepted(jp: AdvisoryPortal) -> None:
    # Samordningsnummer: day of birth + 60 (fictitious, valid check digit).
    hanna = jp.client(HANNA)
    subjects = [{"personal_identity_number": "19920462-9787", "name": "Asylsökande A"}]
    r = hanna.post("/api/v1/advisories", json=body(subjects=subjects))
    assert r.status_code == 201, r.text
    found = jp.client(JONNA).post(
        "/api/v1/lookup", json={"personal_identity_number": "199204629787"}
    )
    assert [a["id"] for a in found.json()["advisories"]] == [r.json()["id"]]


def test_one_search_from_the_start_page_shows_the_plan_itself(jp: AdvisoryPortal) -> None:
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]

    start = jonna.get("/")
    form = re.search(
        r'<form method="post" action="(/lookup)"[^>]*role="search">(.*?)</form>', start.text, re.S
    )
    assert form is not None and 'name="personal_identity_number"' in form.group(2)
    found = jonna.post(
        form.group(1),
        data={
            "personal_identity_number": "20110305-9893",
            "_csrf_token": jonna.cookies["csrftoken"],
        },
    )
    assert found.status_code == 200
    text = found.text
    assert "Instruktioner till jouren:</strong> Bevilja inte akutboende." in text
    assert "Placerad hos morbror i Delsbo." in text and "jourhem via IFO" in text
    assert "Hanna Hedlund" in text and 'href="tel:065019000"' in text
    assert "LVU" in text and f'href="/advisories/{aid}"' in text
    assert "autofocus" not in text  # after a search the result is what matters
    assert "autofocus" in jonna.get("/lookup").text

    api = jonna.post("/api/v1/lookup", json={"personal_identity_number": BOY}).json()
    (plan,) = api["plans"]
    assert plan["advisory_id"] == aid and plan["instructions"] == "Bevilja inte akutboende."
    assert plan["legal_basis"] == "lvu" and plan["contact_phone"] == "0650-190 00"


def test_people_are_found_by_name_or_alias_without_decrypting_the_archive(
    jp: AdvisoryPortal,
) -> None:
    from portal.lookup.names import tokens

    assert tokens("Anna-Karin Åström  Éclair") == ["anna", "eclair", "karin", "åström"]
    add_second_jour(jp.settings)
    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    subjects = [
        {"personal_identity_number": BOY, "name": "Kalle Klient"},
        {"identity_unknown": True, "name": "Sixten", "description": "Kompis, cirka 16 år"},
    ]
    aid = hanna.post("/api/v1/advisories", json=body(subjects=subjects)).json()["id"]
    other = (
        jp.client(OTHER_HANDLER)
        .post(
            "/api/v1/advisories",
            json=body(subjects=[{"personal_identity_number": BOY17, "name": "Kalle Annan"}]),
        )
        .json()["id"]
    )

    def by_name(client: Any, name: str) -> list[str]:
        r = client.post("/api/v1/lookup", json={"name": name})
        assert r.status_code == 200, r.text
        assert (
            r.json()["name"] == " ".join(name.split())
            and r.json()["personal_identity_number"] == ""
        )
        return [a["id"] for a in r.json()["advisories"]]

    assert by_name(jonna, "kalle klient") == [aid]  # case does not matter
    assert by_name(jonna, "KLIENT") == [aid]  # one word is enough
    assert by_name(jonna, "Sixten") == [aid]  # the alias of an unknown person
    assert by_name(jonna, "Kalle") == [aid]  # the other jour's Kalle is not Jonna's
    assert by_name(jp.client(OTHER_JOUR_STAFF), "Kalle") == [other]
    assert by_name(jonna, "Kal") == []  # whole words only
    assert by_name(jonna, "Kalle Okänd") == []  # every word must match

    empty = jonna.post("/api/v1/lookup", json={"name": "!"})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "name"

    # The page: one search, the plan in the result; the log names a keyed hash, not the name.
    page = jonna.post("/lookup", data={"name": "Sixten", "_csrf_token": jonna.cookies["csrftoken"]})
    assert page.status_code == 200 and "Resultat för namnet ”Sixten”" in page.text
    assert "Bevilja inte akutboende." in page.text
    entries = [e for e in audit_entries(jp.settings, "lookup") if e.object_type == "person-name"]
    assert entries and all(
        "Sixten" not in str(e.details) and "Sixten" not in str(e.object_id) for e in entries
    )
    # An amendment re-indexes: the old name no longer finds it.
    renamed = [{"personal_identity_number": BOY, "name": "Karl Klient"}]
    r = hanna.put(f"/api/v1/advisories/{aid}", json=body(subjects=renamed, base_version=1))
    assert r.status_code == 200, r.text
    assert by_name(jonna, "Sixten") == [] and by_name(jonna, "Karl") == [aid]


def test_the_name_index_can_be_rebuilt(jp: AdvisoryPortal) -> None:
    from sqlalchemy import delete

    from portal.lookup.models import NameToken

    hanna, jonna = jp.client(HANNA), jp.client(JONNA)
    aid = hanna.post("/api/v1/advisories", json=body()).json()["id"]

    async def wipe(db: Any) -> None:
        await db.execute(delete(NameToken))

    run(jp.settings, wipe)  # as for records written before the index existed
    assert jonna.post("/api/v1/lookup", json={"name": "Kalle"}).json()["advisories"] == []

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    env = {
        "JOURPOST_DATABASE_URL": jp.settings.database_url,
        "JOURPOST_KEKS": ",".join(f"{k}:{b64(v)}" for k, v in jp.settings.keks.items()),
        "JOURPOST_CURRENT_KEK": jp.settings.current_kek,
        "JOURPOST_BLIND_INDEX_KEY": b64(jp.settings.blind_index_key),
        "JOURPOST_SECRET_KEY": b64(jp.settings.secret_key),
        "JOURPOST_DATA_DIR": jp.settings.data_dir,
        "JOURPOST_DEV_IDP_ENABLED": "true",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "jourpost"), "lookup", "reindex-names"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "name index rebuilt: 1 advisories" in done.stdout
    found = jonna.post("/api/v1/lookup", json={"name": "Kalle"}).json()["advisories"]
    assert [a["id"] for a in found] == [aid]
