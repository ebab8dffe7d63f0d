"""The tenant isolation matrix: merchant A, authenticated, names merchant B's objects.

Every route comes from the app itself (``create_app().routes``): a route whose path names a
merchant's object is called with each of B's objects of that kind (an API token on /api, a
logged-in session with its CSRF token on the pages) and must answer 404, show nothing of B
and change nothing of B's (a snapshot of every row of every registered table that is B's or
points at B's rows, before and after). A new route with an id, a new kind of path parameter
or a new unsafe method without an example body fails here until it is added below. Lists
without ids are read as A and must not show anything of B's; B's ids inside bodies and
queries are answered as ids nobody has.

Not routes, so not here: the pixel and click paths (/r/o/, /r/c/) are answered in front of
the router by tracking.redirects.TrackingFastPath, from signed tokens (tests/tracking).
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from litestar.routes import HTTPRoute

from loyalmail.app import create_app
from loyalmail.auth import CSRF_HEADER
from loyalmail.database import LARGEST_KEY
from tests.campaigns.test_api import auth
from tests.conftest import login
from tests.loyalmail.tenant_data import Tenant, build_tenant, registered_tables, snapshot

#: Path parameters that name a merchant's object, and the kind of B's objects put in them.
ID_PARAMETERS = {
    "campaign_id": "campaign",
    "customer_id": "customer",
    "segment_id": "segment",
    "job_id": "job",
    "token_id": "token",
    "domain_id": "domain",
}

#: Routes with a path parameter that is not a merchant's object id, and why the matrix
#: leaves them out. A new one fails the test until it is listed here (or in ID_PARAMETERS).
OUT_OF_SCOPE = {
    "/r/optin/{token:str}": "recipient page: the signed token names merchant and customer",
    "/r/signup/{slug:str}": "public sign-up page of the merchant the slug names",
    "/r/view/{token:str}": "recipient page: the signed token names merchant and recipient",
    "/r/c/{rest:path}": "the 404 page of a click that leads nowhere (tests/tracking)",
    "/r/unsubscribe/{token:str}": "recipient page: signed token (tests/tracking)",
    "/r/unsubscribe/{token:str}/undo": "recipient page: signed token (tests/tracking)",
    "/r/preferences/{token:str}": "recipient page: signed token (tests/tracking)",
    "/r/preferences/{token:str}/erase": "recipient page: signed token (tests/tracking)",
    "/r/preferences/{token:str}/leave": "recipient page: signed token (tests/tracking)",
    "/r/preferences/{token:str}/pause": "recipient page: signed token (tests/tracking)",
    "/media/{key:str}": "public newsletter images for mail clients: a random, unguessable key",
    "/api/operator/merchants/{slug:str}/quota": "the operator's API, its own token, all merchants",
    "/api/operator/merchants/{slug:str}/quota/packs": "the operator's API, its own token",
    "/api/operator/merchants/{slug:str}/customers/type": "the operator's API, its own token",
    "/api/segments/predefined/{key:str}": "a predefined group's key, the same for everyone",
    "/segments/predefined/{key:str}/members": "a predefined group's key, the same for everyone",
    "/outbox/{mail_id:str}": "the demo's mail catcher (LOYALMAIL_DEMO only): one machine's outbox",
    "/static/{file_path:path}": "the app's own static files",
    "/schema/{path:str}": "the OpenAPI documents",
}

#: A plausible body for every unsafe method of a route with an id: what the handler would
#: accept for A's own object, so the request reaches the ownership check instead of a 422.
#: ("json", value) | ("form", fields) | ("none", None). ``{own_email}`` is A's owner's login.
BODIES: dict[tuple[str, str], tuple[str, Any]] = {
    ("DELETE", "/api/tokens/{token_id:int}"): ("none", None),
    ("DELETE", "/api/sending-domains/{domain_id:int}"): ("none", None),
    ("POST", "/api/sending-domains/{domain_id:int}/check"): ("none", None),
    ("POST", "/api/sending-domains/{domain_id:int}/rotate"): ("none", None),
    ("POST", "/settings/domains/{domain_id:int}/check"): ("form", {}),
    ("POST", "/settings/domains/{domain_id:int}/rotate"): ("form", {}),
    ("POST", "/settings/domains/{domain_id:int}/remove"): ("form", {}),
    ("POST", "/settings/tokens/{token_id:int}/revoke"): ("form", {}),
    ("POST", "/customers/{customer_id:int}/purchases"): (
        "form",
        {"kind": "purchase", "amount": "12.50", "occurred_at": "", "reference": "x"},
    ),
    ("POST", "/customers/{customer_id:int}/edit"): (
        "form",
        {"email": "changed@example.com", "first_name": "Changed", "custom_fields": ""},
    ),
    ("POST", "/customers/{customer_id:int}/erase"): ("form", {"confirm": "erase"}),
    ("POST", "/customers/{customer_id:int}/optin"): ("form", {}),
    ("POST", "/customers/import/{job_id:int}/run"): ("form", {}),
    ("POST", "/api/customers/{customer_id:int}/purchases"): ("json", {"amount": "12.50"}),
    ("PATCH", "/api/customers/{customer_id:int}"): ("json", {"first_name": "Changed"}),
    ("DELETE", "/api/customers/{customer_id:int}"): ("none", None),
    ("POST", "/api/customers/{customer_id:int}/optin"): ("none", None),
    ("POST", "/api/imports/{job_id:int}/run"): ("none", None),
    ("PATCH", "/api/segments/{segment_id:int}"): ("json", {"name": "Changed"}),
    ("DELETE", "/api/segments/{segment_id:int}"): ("none", None),
    ("POST", "/segments/{segment_id:int}/delete"): ("form", {}),
    ("POST", "/api/campaigns/{campaign_id:int}/cancel"): ("none", None),
    ("PATCH", "/api/campaigns/{campaign_id:int}"): ("json", {"name": "Changed"}),
    ("DELETE", "/api/campaigns/{campaign_id:int}"): ("none", None),
    ("POST", "/api/campaigns/{campaign_id:int}/pause"): ("json", {"reason": "x"}),
    ("POST", "/api/campaigns/{campaign_id:int}/preview"): ("json", {}),
    ("POST", "/api/campaigns/{campaign_id:int}/resume"): ("none", None),
    ("POST", "/api/campaigns/{campaign_id:int}/schedule"): ("json", {"at": "2030-01-01T09:00"}),
    ("DELETE", "/api/campaigns/{campaign_id:int}/schedule"): ("none", None),
    ("POST", "/api/campaigns/{campaign_id:int}/send"): ("none", None),
    ("POST", "/api/campaigns/{campaign_id:int}/test-sends"): (
        "json",
        {"addresses": ["{own_email}"]},
    ),
    ("POST", "/campaigns/{campaign_id:int}/audience"): ("form", {"audience": "predefined:all"}),
    ("POST", "/campaigns/{campaign_id:int}/cancel"): ("form", {}),
    ("POST", "/campaigns/{campaign_id:int}/delete"): ("form", {}),
    ("POST", "/campaigns/{campaign_id:int}/layout"): ("form", {"layout": "classic"}),
    ("POST", "/campaigns/{campaign_id:int}/pause"): ("form", {}),
    ("POST", "/campaigns/{campaign_id:int}/resume"): ("form", {}),
    ("POST", "/campaigns/{campaign_id:int}/basics"): (
        "form",
        {"name": "Changed", "subject": "Changed", "preheader": "", "sender_name": ""},
    ),
    ("POST", "/campaigns/{campaign_id:int}/schedule"): ("form", {"at": "2030-01-01T09:00"}),
    ("POST", "/campaigns/{campaign_id:int}/send"): ("form", {}),
    ("POST", "/campaigns/{campaign_id:int}/test-send"): ("form", {"address": "{own_email}"}),
    ("POST", "/campaigns/{campaign_id:int}/unschedule"): ("form", {}),
}

#: Lists (no id in the path) that must show A's own rows: proof the leak check below reads
#: a real list and not an empty or error page.
MUST_SHOW_OWN = [
    "/api/customers",
    "/api/customers/export.csv",
    "/api/customers/export.xlsx",
    "/api/campaigns",
    "/api/segments",
    "/api/imports",
    "/api/tokens",
    "/api/media",
    "/api/merchant",
    "/customers",
    "/campaigns",
    "/segments",
    "/settings/tokens",
    "/api/sending-domains",
    "/settings/domains",
]

SKIPPED_METHODS = {"OPTIONS", "HEAD"}


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    params: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.template.startswith("/api/")

    def path(self, values: dict[str, int]) -> str:
        path = self.template
        for name in self.params:
            path = re.sub(r"\{" + name + r":[a-z]+\}", str(values[name]), path)
        return path


def app_calls() -> tuple[list[Call], list[Call], list[str]]:
    """(calls naming an object, GET lists without parameters, problems) from the app's routes."""
    with_ids, lists, problems = [], [], []
    for route in create_app(use_pool=False).routes:
        if not isinstance(route, HTTPRoute):
            problems.append(f"{route.path}: not an HTTP route, the matrix does not know it")
            continue
        params = tuple(route.path_parameters)
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - SKIPPED_METHODS):
                call = Call(method, route.path, params)
                if not params:
                    if method == "GET":
                        lists.append(call)
                elif route.path in OUT_OF_SCOPE:
                    continue
                elif unknown := [p for p in params if p not in ID_PARAMETERS]:
                    problems.append(
                        f"{method} {route.path}: add {unknown} to ID_PARAMETERS (a merchant's "
                        "object) or the route to OUT_OF_SCOPE with the reason"
                    )
                elif method != "GET" and (method, route.path) not in BODIES:
                    problems.append(f"{method} {route.path}: add an example body to BODIES")
                else:
                    with_ids.append(call)
    return with_ids, lists, problems


def request_options(call: Call, tenant: Tenant, csrf: str) -> dict[str, Any]:
    """Headers and body for ``call`` made by ``tenant``: its API token on /api, its session
    (already in the client's cookies) with the CSRF token on the pages."""
    headers = auth(tenant.api_token) if call.is_api else {"accept": "text/html"}
    options: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if call.method == "GET":
        return options
    if not call.is_api:
        headers[CSRF_HEADER] = csrf
    kind, body = BODIES[(call.method, call.template)]
    if kind == "json":
        options["json"] = _own(body, tenant)
    elif kind == "form":
        options["data"] = _own(body, tenant)
    return options


def _own(body: Any, tenant: Tenant) -> Any:
    if isinstance(body, str):
        return body.replace("{own_email}", tenant.owner.email)
    if isinstance(body, list):
        return [_own(item, tenant) for item in body]
    if isinstance(body, dict):
        return {key: _own(value, tenant) for key, value in body.items()}
    return body


def shown_text(content: bytes) -> str:
    """What a response shows, an Excel file's cells included (a zip of XML)."""
    if content.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return " ".join(
                archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
            )
    return content.decode("utf-8", "replace")


def id_values(call: Call, tenant: Tenant) -> list[tuple[str, dict[str, int]]]:
    """Every combination of the tenant's objects for the call's parameters, labelled."""
    choices = [list(tenant.ids[ID_PARAMETERS[name]].items()) for name in call.params]
    return [
        (
            "/".join(label for label, _ in combo),
            {n: v for n, (_, v) in zip(call.params, combo, strict=True)},
        )
        for combo in itertools.product(*choices)
    ]


async def request(client: Any, call: Call, tenant: Tenant, csrf: str, path: str) -> Any:
    return await client.request(call.method, path, **request_options(call, tenant, csrf))


async def test_another_merchants_ids_are_404_everywhere_and_change_nothing(
    client: Any,
) -> None:
    with_ids, lists, problems = app_calls()
    assert not problems, "\n".join(problems)
    assert len(with_ids) > 60 and len(lists) > 20, (len(with_ids), len(lists))
    assert set(ID_PARAMETERS) == {p for call in with_ids for p in call.params}, (
        "an ID_PARAMETERS entry no route uses any more"
    )
    a, b = await build_tenant("zqalpha"), await build_tenant("zqbeta")
    assert set(a.ids) >= {ID_PARAMETERS[p] for p in ID_PARAMETERS}
    csrf = await login(client, a.owner)
    before = await snapshot(b.merchant.id)
    # B has rows in every registered table: the snapshot below watches data of every kind.
    assert set(before) == {t._meta.tablename for t in registered_tables()}
    assert all(before.values()), [table for table, rows in before.items() if not rows]

    wrong: list[str] = []
    checked = 0
    for call in with_ids:
        for label, values in id_values(call, b):
            answer = await request(client, call, a, csrf, call.path(values))
            checked += 1
            where = f"{call.method} {call.path(values)} (B's {label})"
            if answer.status_code != 404:
                wrong.append(f"{where}: {answer.status_code} {answer.text[:200]}")
            elif b.marker in shown_text(answer.content).lower():
                wrong.append(f"{where}: the 404 shows B's data")
    assert not wrong, f"{len(wrong)} of {checked} calls:\n" + "\n".join(wrong)
    assert await snapshot(b.merchant.id) == before, "merchant A's calls changed B's rows"

    # The same GETs with A's own objects answer: the 404s above are the ownership check.
    refused = []
    for call in (c for c in with_ids if c.method == "GET"):
        for label, values in id_values(call, a):
            answer = await request(client, call, a, csrf, call.path(values))
            if answer.status_code >= 400:
                refused.append(f"GET {call.path(values)} (A's {label}): {answer.status_code}")
    assert not refused, "\n".join(refused)


async def test_lists_never_show_another_merchants_rows(client: Any) -> None:
    _with_ids, lists, problems = app_calls()
    assert not problems, "\n".join(problems)
    a, b = await build_tenant("zqalpha"), await build_tenant("zqbeta")
    await login(client, a.owner)
    leaks, broken, own_shown = [], [], set()
    for call in lists:
        answer = await request(client, call, a, "", call.template)
        text = shown_text(answer.content).lower()
        if answer.status_code >= 500 and call.template != "/health":  # 503: no Redis here
            broken.append(f"GET {call.template}: {answer.status_code}")
        if b.marker in text or b.merchant.slug in text:
            leaks.append(f"GET {call.template} shows B's data")
        if a.marker in text:
            own_shown.add(call.template)
    assert not leaks and not broken, "\n".join(leaks + broken)
    assert set(MUST_SHOW_OWN) <= own_shown, sorted(set(MUST_SHOW_OWN) - own_shown)


#: B's ids inside a body or a query of a call on A's own object (``{a:kind}`` is A's first
#: object of that kind, ``{other:kind}`` the id put in): B's id must be answered exactly as an
#: id nobody has (a body's unknown id is a 422 naming the field, a preview's unknown customer
#: a 404, a page's preview shows its problem), so the answer tells A nothing about B.
BODY_IDS: list[tuple[str, str, Any]] = [
    ("POST", "/api/campaigns", {"name": "x", "audience": {"segment_id": "{other:segment}"}}),
    ("PATCH", "/api/campaigns/{a:campaign}", {"audience": {"segment_id": "{other:segment}"}}),
    ("POST", "/api/campaigns/{a:campaign}/preview", {"customer_id": "{other:customer}"}),
    (
        "POST",
        "/api/campaigns/{a:campaign}/test-sends",
        {"addresses": ["{own_email}"], "customer_id": "{other:customer}"},
    ),
    ("POST", "/campaigns/{a:campaign}/audience", {"audience": "segment:{other:segment}"}),
    (
        "POST",
        "/campaigns/{a:campaign}/test-send",
        {"address": "{own_email}", "customer": "{other:customer}"},
    ),
    ("GET", "/campaigns/{a:campaign}/design?customer={other:customer}", None),
    ("GET", "/campaigns/{a:campaign}/summary?customer={other:customer}", None),
]


def _filled(value: Any, names: dict[str, int]) -> Any:
    if isinstance(value, str):
        if value in names:
            return names[value]
        for key, number in names.items():
            value = value.replace(key, str(number))
        return value
    if isinstance(value, list):
        return [_filled(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, names) for key, item in value.items()}
    return value


async def test_another_merchants_ids_in_bodies_and_queries_are_nobodys(client: Any) -> None:
    a, b = await build_tenant("zqalpha"), await build_tenant("zqbeta")
    csrf = await login(client, a.owner)
    before = await snapshot(b.merchant.id)

    def names(tenant: Tenant | None) -> dict[str, int]:
        first = {kind: next(iter(ids.values())) for kind, ids in a.ids.items()}
        other = (
            {kind: next(iter(ids.values())) for kind, ids in tenant.ids.items()} if tenant else {}
        )
        found = {f"{{a:{kind}}}": number for kind, number in first.items()}
        return found | {f"{{other:{kind}}}": other.get(kind, LARGEST_KEY) for kind in first}

    async def answer(method: str, template: str, body: Any, tenant: Tenant | None) -> Any:
        path = _filled(template, names(tenant))
        headers = auth(a.api_token) if path.startswith("/api/") else {CSRF_HEADER: csrf}
        options: dict[str, Any] = {"headers": headers, "follow_redirects": False}
        if body is not None:
            filled = _own(_filled(body, names(tenant)), a)
            options["json" if path.startswith("/api/") else "data"] = filled
        return await client.request(method, path, **options)

    wrong = []
    for method, template, body in BODY_IDS:
        theirs = await answer(method, template, body, b)
        nobodys = await answer(method, template, body, None)
        text = shown_text(theirs.content).lower()
        # A page may echo the id it was given (a hidden field): B's in one, nobody's in the other.
        (used,) = [
            n for key, n in names(b).items() if key in repr((template, body)) and "other" in key
        ]
        expected = shown_text(nobodys.content).lower().replace(str(LARGEST_KEY), str(used))
        if (theirs.status_code, text) != (nobodys.status_code, expected):
            wrong.append(
                f"{method} {template}: B's id {theirs.status_code} {theirs.text[:150]!r}, "
                f"nobody's {nobodys.status_code} {nobodys.text[:150]!r}"
            )
        elif b.marker in text or theirs.status_code >= 500:
            wrong.append(f"{method} {template}: {theirs.status_code}, shows B's data")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(b.merchant.id) == before, "merchant A's calls changed B's rows"


def test_the_route_tables_name_only_routes_that_exist() -> None:
    with_ids, lists, _problems = app_calls()
    paths = {call.template for call in with_ids + lists}
    every_path = {route.path for route in create_app(use_pool=False).routes}
    assert not set(OUT_OF_SCOPE) - every_path, set(OUT_OF_SCOPE) - every_path
    calls = {(call.method, call.template) for call in with_ids}
    stale = set(BODIES) - calls
    assert not stale, f"BODIES names routes that are gone: {stale}"
    assert set(MUST_SHOW_OWN) <= paths, set(MUST_SHOW_OWN) - paths
