"""The decision document reads as a Swedish legal document, per decision kind; the signature
stamp names the committee as Swedish writes it; the signing page and the message at the
identity provider tell decisions apart and explain why another chair cannot sign."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.portal.conftest import RunningPortal
from tests.portal.decisions.helpers import (
    EVA,
    HANNA,
    OLOF,
    draft_body,
    jour_client,
    roster_with_olof,
    signed_decision,
)
from tests.portal.login import csrf_form, login
from tests.portal.sessions import client_as

SENTENCES = {
    "lvu6": (
        "Ordföranden i socialnämnden i Hudiksvall beslutar med stöd av 6 § lagen (1990:52) med "
        "särskilda bestämmelser om vård av unga (LVU) att Pojke Testsson omedelbart ska "
        "omhändertas."
    ),
    "lvm13": (
        "Ordföranden i socialnämnden i Hudiksvall beslutar med stöd av 13 § lagen (1988:870) om "
        "vård av missbrukare i vissa fall (LVM) att Pojke Testsson omedelbart ska omhändertas."
    ),
    "lvu11": (
        "Ordföranden i socialnämnden i Hudiksvall beslutar med stöd av 11 § andra stycket lagen "
        "(1990:52) med särskilda bestämmelser om vård av unga (LVU) att Pojke Testsson ska "
        "flyttas till det hem som anges under rubriken Placering."
    ),
}


def _text(pdf: bytes) -> str:
    """The PDF's text with all whitespace (line breaks included) collapsed to single spaces."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
    return re.sub(r"\s+", " ", out)


@pytest.mark.parametrize("kind", sorted(SENTENCES))
def test_the_document_states_the_decision_per_kind(portal: RunningPortal, kind: str) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known, kind=kind))
    assert d.status_code == 201, d.text
    decision_id = d.json()["id"]
    assert jonna.post(f"/api/v1/decisions/{decision_id}/submit").status_code == 200
    pdf = jonna.get(f"/decisions/{decision_id}/document.pdf")
    assert pdf.status_code == 200, pdf.text
    text = _text(pdf.content)
    assert SENTENCES[kind] in text, text
    assert "beslutar om beslut" not in text


def test_the_signature_stamp_names_the_committee_in_running_text(portal: RunningPortal) -> None:
    decision_id = signed_decision(portal)
    hanna = client_as(portal.url, portal.settings, HANNA)
    text = _text(hanna.get(f"/decisions/{decision_id}/signed.pdf").content)
    assert "Digitalt signerat av Olof Ordén, ordförande i socialnämnden i Hudiksvall, tid" in text
    assert "hudiksvall" not in text


def test_the_signing_page_and_message_tell_decisions_apart(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    ids = []
    for _ in range(2):
        d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
        assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
        ids.append(str(d["id"]))
    olof, _ = login(portal.url, OLOF)
    messages = []
    for decision_id in ids:
        ref = decision_id[:8].upper()
        page = olof.get(f"/decisions/{decision_id}/sign").text
        assert f"<dt>Ärende</dt><dd>{ref}</dd>" in page
        assert "Socialjourens telefon" in page and 'href="tel:' in page
        start = olof.post(f"/decisions/{decision_id}/sign", data=csrf_form(olof))
        idp_page = olof.get(start.headers["location"]).text
        assert f"ärende {ref}, muntligt beslut " in idp_page
        messages.append(re.search(r"Jag undertecknar[^<]*", idp_page))
    assert messages[0] and messages[1] and messages[0][0] != messages[1][0]


def test_another_chair_is_told_whose_decision_it_is(portal: RunningPortal) -> None:
    known = roster_with_olof(portal)
    jonna = jour_client(portal)
    d = jonna.post("/api/v1/decisions", json=draft_body(known)).json()
    assert jonna.post(f"/api/v1/decisions/{d['id']}/submit").status_code == 200
    eva, _ = login(portal.url, EVA)
    page = eva.get(f"/decisions/{d['id']}/sign")
    assert page.status_code == 200, page.text
    assert "Beslutet fattades av ordförande Olof Ordén och väntar på dennes underskrift" in (
        page.text
    )
    assert "därför finns ingen knapp för underskrift här" in page.text
    assert "Ditt muntliga beslut" not in page.text
    assert "Skriv under med e-legitimation" not in page.text
    olof, _ = login(portal.url, OLOF)
    own = olof.get(f"/decisions/{d['id']}/sign").text
    assert "Ditt muntliga beslut" in own and "not-signer" not in own
