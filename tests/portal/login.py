"""Log in (and step up for a signature) through the portal and the development identity
provider, as a browser would: follow redirects by hand, fill in the provider's form."""

from __future__ import annotations

import httpx

from tests.servers.forms import form_with_field


def through_idp(client: httpx.Client, authorize_url: str, personnummer: str) -> httpx.Response:
    """Open the provider's page, submit the person, follow to and return the callback answer."""
    return submit_idp_page(client, client.get(authorize_url), personnummer)


def submit_idp_page(
    client: httpx.Client, page: httpx.Response, personnummer: str
) -> httpx.Response:
    """Submit the person on an opened provider page; follow to and return the callback answer.

    (A pushed request's URL is single use: a page already opened is submitted, not reloaded.)
    """
    assert page.status_code == 200, page.text
    form = form_with_field(page.text, str(page.url), "personal_identity_number")
    data = dict(form.fields)
    data["personal_identity_number"] = personnummer
    if form.submit_names:
        data.setdefault(*form.submit_names[0])
    answer = client.request(form.method.upper(), form.action, data=data)
    while answer.status_code in (302, 303) and "/auth/callback" not in answer.headers["location"]:
        answer = client.get(answer.headers["location"])
    assert answer.status_code in (302, 303), answer.text
    return client.get(answer.headers["location"])


def login(
    base_url: str, personnummer: str, *, next_path: str = ""
) -> tuple[httpx.Client, httpx.Response]:
    """Walk /auth/login → dev IdP form → /auth/callback; return the client and the final answer."""
    # Origin: as a browser names the page's origin on its posts (portal.web.origin checks it).
    client = httpx.Client(
        base_url=base_url, follow_redirects=False, timeout=30, headers={"Origin": base_url}
    )
    start = client.get("/auth/login" + (f"?next={next_path}" if next_path else ""))
    assert start.status_code in (302, 303), start.text
    return client, through_idp(client, start.headers["location"], personnummer)


def csrf_form(client: httpx.Client) -> dict[str, str]:
    """The hidden form field a page form would send."""
    if client.cookies.get("csrftoken") is None:
        client.get("/healthz")
    return {"_csrf_token": client.cookies["csrftoken"]}
