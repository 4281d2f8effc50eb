"""The code lists: `GET /api/v1/codelists` for systems, `/codes` (a glossary) for people."""

from __future__ import annotations

from litestar import Controller, get
from litestar.response import Template

from portal.codelists import service
from portal.codelists.schemas import CodeListsOut
from portal.codelists.standard import LIST_LABELS
from portal.web.deps import CurrentUser, Db
from portal.web.render import render

TERMS: tuple[tuple[str, str], ...] = (
    (
        "Avisering",
        "Kommunens planering för en person som kan komma i kontakt med socialjouren, med "
        "instruktioner till jouren. Gäller till ett visst datum och ska bekräftas på nytt.",
    ),
    ("Kvittens", "Jouren bekräftar att den har läst den aktuella versionen."),
    (
        "Händelserapport",
        "Jourens rapport till kommunen om vad som hände under natten och vad jouren gjorde.",
    ),
    (
        "Beredskapstid",
        "Tid då jouren arbetar i beredskap (hemifrån, nås per telefon) i stället för på plats.",
    ),
    (
        "Omedelbart omhändertagande",
        "Ordförandens (eller ersättarens) beslut enligt 6 § LVU eller 13 § LVM när rättens "
        "beslut inte kan avvaktas. Fattas muntligt och skrivs sedan under elektroniskt.",
    ),
    (
        "Underställning",
        "Beslutet skickas till förvaltningsrätten för prövning: inom en vecka enligt 7 § LVU, "
        "genast enligt 15 § LVM.",
    ),
    (
        "Handräckning",
        "Begäran om polisens hjälp att genomföra ett beslut (43 § LVU, 45 § LVM). Bara möjlig "
        "vid placering enligt LVU eller LVM, aldrig vid frivillig placering enligt SoL.",
    ),
    ("SoL", "Socialtjänstlagen: frivilliga insatser."),
    ("LVU", "Lagen med särskilda bestämmelser om vård av unga: tvångsvård av barn och unga."),
    ("LVM", "Lagen om vård av missbrukare i vissa fall: tvångsvård av vuxna med missbruk."),
    (
        "Skyddsbedömning",
        "Bedömning av om ett barn behöver skydd omedelbart (11 kap. 1 a § SoL, SOSFS 2014:5).",
    ),
)
"""Words of the trade, in the order a new colleague meets them."""


class CodeListApiController(Controller):
    """Read-only code lists for case systems and statistics (any logged-in user)."""

    path = "/api/v1/codelists"
    tags = ["Kodlistor"]  # noqa: RUF012

    @get("", summary="Kodlistor (kategori, åtgärd, karaktär, initiativtagare) per version")
    async def code_lists(self, db: Db, user: CurrentUser) -> CodeListsOut:
        return await service.overview(db)


class CodeGlossaryPage(Controller):
    """`/codes`: what each code and term means, for anyone logged in."""

    path = "/codes"
    include_in_schema = False

    @get("/")
    async def glossary(self, db: Db, user: CurrentUser) -> Template:
        lists = await service.load(db, await service.current_version(db))
        return render(
            "codelists/glossary.html",
            user,
            lists=lists,
            list_labels=LIST_LABELS,
            terms=TERMS,
        )
