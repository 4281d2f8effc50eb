"""The OpenAPI document completed with what Litestar can't infer from the handlers.

- Security schemes: the session cookie, and for unsafe methods the CSRF token in the
  `X-CSRFToken` header (double submit: the `csrftoken` cookie must come along).
- Every error the API really answers, as RFC 9457 problem details (`application/problem+json`,
  Swedish titles) — the shapes portal.web.errors produces — so a client and a conformance test
  (tests/portal/test_fuzz.py runs schemathesis) can rely on the document.
- Downloads answer the file's own type, not JSON.

`document_api` runs once on the built document in create_app.
"""

from __future__ import annotations

import re

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)

PROBLEM = "application/problem+json"
UNSAFE = ("post", "put", "patch", "delete")

ERROR_ANSWERS = {
    400: "Felaktig begäran: kroppen eller en parameter kunde inte läsas.",
    401: "Ingen giltig session (Du behöver logga in).",
    403: "Saknad behörighet, eller CSRF-token/Origin stämmer inte.",
    404: "Finns inte, eller tillhör en annan organisation.",
    409: "Posten har ändrats eller är i ett läge som inte tillåter detta.",
    413: "Begäran eller filen är för stor.",
    422: "Uppgifterna behöver rättas (fel per fält i `errors`).",
    429: "För många försök; försök igen senare.",
    503: "En tjänst bakom portalen (lagring, signering) svarar inte just nu.",
}

# Operations (path patterns) with errors of their own.
_TOO_MANY = re.compile(r"^/api/v1/lookup$")
_BACKEND = re.compile(
    r"attachments|/pdf$|signed\.pdf$|/submit$|/archive/|/police-requests$|/approve$"
)
_DOWNLOAD = re.compile(r"/attachments/\{attachment_id\}$")
_FILE_TYPES = ("application/pdf", "image/png", "image/jpeg")


def _problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status", "detail", "instance"],
        properties={
            "type": text,
            "title": Schema(type=OpenAPIType.STRING, description="Svensk rubrik"),
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": text,
            "instance": Schema(type=OpenAPIType.STRING, description="Sökvägen som begärdes"),
            "errors": Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(type=OpenAPIType.OBJECT),
                description="Fel per fält: {field, detail} (eller {key, message, source})",
            ),
        },
        description="RFC 9457 problem details",
    )


def error_statuses(path: str, method: str) -> list[int]:
    """The error statuses an API operation can answer."""
    if not path.startswith("/api/"):
        return []
    statuses = [400, 401, 403, 404, 422]
    if method in UNSAFE:
        statuses += [409, 413]
    if _TOO_MANY.search(path):
        statuses.append(429)
    if _BACKEND.search(path):
        statuses.append(503)
    return sorted(statuses)


def document_api(openapi: OpenAPI, *, session_cookie: str, csrf_cookie: str) -> None:
    """Add security schemes, problem-details error answers and download types (in place)."""
    components = openapi.components if isinstance(openapi.components, Components) else None
    if components is None:
        components = openapi.components = Components()
    components.schemas["ProblemDetails"] = _problem_schema()
    components.security_schemes = {
        "session": SecurityScheme(
            type="apiKey",
            security_scheme_in="cookie",
            name=session_cookie,
            description="Sessionen från inloggningen (/auth/login); HttpOnly, SameSite=Lax.",
        ),
        "csrfCookie": SecurityScheme(
            type="apiKey",
            security_scheme_in="cookie",
            name=csrf_cookie,
            description="CSRF-kakan som portalen sätter vid första begäran.",
        ),
        "csrfHeader": SecurityScheme(
            type="apiKey",
            security_scheme_in="header",
            name="X-CSRFToken",
            description="Samma värde som CSRF-kakan; krävs för POST, PUT, PATCH och DELETE.",
        ),
    }
    problem = Reference(ref="#/components/schemas/ProblemDetails")
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            op = getattr(item, method, None)
            if not isinstance(op, Operation):
                continue
            responses = op.responses if op.responses is not None else {}
            for status in error_statuses(path, method):
                responses[str(status)] = OpenAPIResponse(
                    description=ERROR_ANSWERS[status],
                    content={PROBLEM: OpenAPIMediaType(schema=problem)},
                )
            if path.startswith("/api/"):
                op.security = [
                    {"session": [], "csrfCookie": [], "csrfHeader": []}
                    if method in UNSAFE
                    else {"session": []}
                ]
            if method == "get" and _DOWNLOAD.search(path) and "200" in responses:
                binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                responses["200"] = OpenAPIResponse(
                    description="Filen (PDF, PNG eller JPEG), som den laddades upp",
                    content={t: OpenAPIMediaType(schema=binary) for t in _FILE_TYPES},
                )
            if path == "/readyz" and "200" in responses:
                ready = responses["200"]
                content = ready.content if isinstance(ready, OpenAPIResponse) else None
                responses["503"] = OpenAPIResponse(
                    description="Databasen eller lagringen svarar inte", content=content
                )
            op.responses = responses
