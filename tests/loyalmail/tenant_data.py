"""A merchant with data of every kind the app keeps, built through the services, and a
snapshot of every row of every registered table that belongs to (or points at) a merchant:
the tenant isolation matrix (tests/loyalmail/test_tenant_isolation.py) uses both."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from piccolo.columns import ForeignKey
from piccolo.columns.combination import Or, Where
from piccolo.table import Table

from accounts import domains
from accounts import services as accounts
from accounts.schemas import MerchantOut, UserOut
from accounts.tables import Merchant
from campaigns.bounces.services import BounceEvent, record
from campaigns.schemas import Audience, CampaignCreate, ScheduleRequest, TestSendRequest
from campaigns.sending import control, dispatch, mime, test_sends
from campaigns.services import create_campaign
from campaigns.tables import Campaign, CampaignRecipient
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import consent, customers, imports, purchases
from quota import services as quota
from segments import services as segments
from segments.schemas import Group, SegmentCreate
from templates import media
from tests.campaigns.test_api import branded
from tests.conftest import jobs_go_nowhere, make_merchant, make_owner
from tests.templates.test_media import png
from tracking import events
from tracking.tables import TrackingEvent, TrackingHour, TrackingPerson

#: Where a table names another table's row without a foreign key (tracking's batched rows):
#: followed like a foreign key, so a row of one merchant naming another's campaign is seen.
_NAMED = {"merchant": Merchant, "campaign": Campaign, "recipient": CampaignRecipient}
SOFT_REFERENCES: dict[type[Table], dict[str, type[Table]]] = {
    table: {
        name: target
        for name, target in _NAMED.items()
        if name in {c._meta.name for c in table._meta.columns}
    }
    for table in (TrackingEvent, TrackingPerson, TrackingHour)
}


@dataclass
class Tenant:
    """One merchant and the ids of what it owns; ``marker`` is in every text it wrote, so a
    response that shows any of it can be recognised."""

    marker: str
    merchant: MerchantOut
    owner: UserOut
    api_token: str
    ids: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, name: str, value: int) -> None:
        self.ids.setdefault(kind, {})[name] = value


async def _verified_customer(merchant: MerchantOut, marker: str, n: int, kind: str) -> int:
    created = await customers.create_customer(
        merchant.id,
        CustomerCreate(
            email=f"{marker}-{n}@{merchant.slug}.example.com",
            first_name=f"{marker}first{n}",
            last_name=f"{marker}last{n}",
            city=f"{marker}city",
            customer_type=kind,  # type: ignore[arg-type]
            custom_fields={"tier": f"{marker}tier"},
            send_optin=False,
        ),
    )
    link = consent.optin_url(merchant.id, created.id, created.email.lower())
    await consent.confirm_optin(link.rstrip("/").rsplit("/", 1)[-1], ip="192.0.2.1")
    await purchases.add_purchase(
        merchant.id, created.id, PurchaseCreate(amount=Decimal("40.00"), reference=marker)
    )
    await purchases.add_purchase(
        merchant.id,
        created.id,
        PurchaseCreate(kind="refund", amount=Decimal("5.00"), reference=f"{marker}-r"),
    )
    return created.id


async def _import_job(tenant: Tenant) -> int:
    """A previewed import whose report has a rejected row."""
    folder = Path(tempfile.mkdtemp(prefix="iso-import-"))
    path = folder / "upload.csv"
    marker, slug = tenant.marker, tenant.merchant.slug
    path.write_text(
        f"email,first_name\n{marker}-new@{slug}.example.com,{marker}\nnot-an-address,x\n"
    )
    job = await imports.create_job(
        tenant.merchant.id,
        filename=f"{marker}-list.csv",
        stored_path=path,
        options=imports.ImportOptions(),
        created_by=tenant.owner.id,
        actor=tenant.owner.email,
    )
    await imports.preview(tenant.merchant.id, job.id)  # the dry run its job would do
    return job.id


async def _sent_campaign(tenant: Tenant, audience: Audience, name: str) -> int:
    """Started through the dispatch (frozen recipients, batches, links, a reservation)."""
    merchant_id = tenant.merchant.id
    campaign = await create_campaign(
        merchant_id,
        CampaignCreate(name=f"{tenant.marker} {name}", subject="Hello", audience=audience),
    )
    await dispatch.send_now(merchant_id, campaign.id)
    return campaign.id


async def _build_tenant(marker: str) -> Tenant:
    """A merchant with customers (purchases, consent, custom fields, an erased one), an
    import with its report, a saved segment, campaigns drafted, scheduled, paused and sent
    (recipients, links, batches, events, a bounce), a test send, quota (allowance, test
    sends, a pack, reservations), users, a web session, API tokens and an image."""
    merchant = await branded(await make_merchant(name=f"{marker} Shop"))
    owner = await make_owner(merchant)
    token = await accounts.create_api_token(merchant.id, f"{marker} token")
    tenant = Tenant(marker, merchant, owner, token.token)
    staff = await accounts.create_user(
        merchant.id, f"{marker}-staff@{merchant.slug}.example.com", "staff password 123"
    )
    tenant.add("user", "staff", staff.id)
    await accounts.start_session(owner)
    spare = await accounts.create_api_token(merchant.id, f"{marker} spare")
    tenant.add("token", "spare", spare.id)
    domain = await domains.add_domain(merchant.id, f"{marker.lower()}.{merchant.slug}.example")
    tenant.add("domain", "pending", domain.id)

    kinds = ["loyal", "member", "non_member"]
    for n, kind in enumerate(kinds):
        tenant.add("customer", kind, await _verified_customer(merchant, marker, n, kind))
    erased = await _verified_customer(merchant, marker, 9, "loyal")
    await customers.erase_customer(merchant.id, erased, actor=owner.email)
    tenant.add("job", "previewed", await _import_job(tenant))

    definition = msgspec.convert(
        {
            "type": "group",
            "conditions": [{"type": "customer_type", "op": "in", "values": ["loyal"]}],
        },
        Group,
    )
    segment = await segments.create_segment(
        merchant.id, SegmentCreate(name=f"{marker} loyal", definition=definition)
    )
    tenant.add("segment", "loyal", segment.id)

    await quota.buy_pack(merchant.id, reference=f"{marker}-pack")
    everyone = Audience(predefined="all_customers")
    draft = await create_campaign(
        merchant.id,
        CampaignCreate(
            name=f"{marker} draft", subject="Hi", audience=Audience(segment_id=segment.id)
        ),
    )
    tenant.add("campaign", "draft", draft.id)
    await test_sends.request_test_send(
        merchant.id,
        draft.id,
        TestSendRequest(addresses=[owner.email], customer_id=tenant.ids["customer"]["loyal"]),
    )
    scheduled = await create_campaign(
        merchant.id, CampaignCreate(name=f"{marker} scheduled", subject="Hi", audience=everyone)
    )
    at = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="minutes")
    await dispatch.schedule(merchant.id, scheduled.id, ScheduleRequest(at=at))
    tenant.add("campaign", "scheduled", scheduled.id)

    paused = await _sent_campaign(tenant, everyone, "paused")
    await control.pause(merchant.id, paused, reason=f"{marker} pause")
    tenant.add("campaign", "paused", paused)
    tenant.add("campaign", "sending", await _sent_campaign(tenant, everyone, "sending"))
    sent = await _sent_campaign(tenant, everyone, "sent")
    tenant.add("campaign", "sent", sent)
    await _deliver_all(tenant, sent)

    await media.store_image(merchant.id, png(), f"{marker}-logo.png")
    return tenant


async def _deliver_all(tenant: Tenant, campaign_id: int) -> None:
    """What the send workers and the recipients' mail clients would leave behind: the
    messages accepted, an open, a click, an unsubscribe and a hard bounce."""
    # The status columns are the send pipeline's (tests/campaigns/test_sending.py runs it for
    # real against an SMTP server); here only the rows it leaves matter.
    now = datetime.now(UTC)
    await CampaignRecipient.update(
        {CampaignRecipient.status: "sent", CampaignRecipient.sent_at: now}
    ).where(CampaignRecipient.campaign == campaign_id)
    await Campaign.update({Campaign.status: "sent", Campaign.finished_at: now}).where(
        Campaign.id == campaign_id
    )
    rows = await (
        CampaignRecipient.select(CampaignRecipient.id, CampaignRecipient.email)
        .where(CampaignRecipient.campaign == campaign_id)
        .order_by(CampaignRecipient.id)
    )
    first, last = int(rows[0]["id"]), int(rows[-1]["id"])
    merchant_id = tenant.merchant.id
    tenant.add("recipient", "first", first)
    moment = now - timedelta(hours=1)
    await events.write_now(
        [
            events.Event(merchant_id, campaign_id, first, "open", moment),
            events.Event(merchant_id, campaign_id, first, "click", moment, 0),
            events.Event(merchant_id, campaign_id, last, "unsubscribe", moment),
        ]
    )
    address = str(rows[-1]["email"])
    outcome = await record(
        BounceEvent(
            label=address,
            kind="hard",
            addresses=(address,),
            message_id=mime.message_id(merchant_id, campaign_id, last, "shop.example"),
            return_paths=(),
            event_id=f"webhook:{tenant.marker}-{last}",
            source="webhook",
            status="5.1.1",
        )
    )
    assert outcome.result == "recorded", outcome


# --- the snapshot ----------------------------------------------------------------------------


def registered_tables() -> list[type[Table]]:
    """Every table of every app in piccolo_conf's registry: a new table is covered as soon
    as its app lists it."""
    from piccolo_conf import APP_REGISTRY

    return [table for config in APP_REGISTRY.app_configs.values() for table in config.table_classes]


def _references(table: type[Table]) -> dict[str, type[Table]]:
    found: dict[str, type[Table]] = {
        column._meta.name: column._foreign_key_meta.resolved_references
        for column in table._meta.columns
        if isinstance(column, ForeignKey)
    }
    found.update(SOFT_REFERENCES.get(table, {}))
    return found


Snapshot = dict[str, list[dict[str, Any]]]


async def snapshot(merchant_id: int) -> Snapshot:
    """Every row that is the merchant's or names one of its rows (directly or through
    others, to a fixed point): a row another merchant wrote pointing at this merchant's
    customer shows up here too."""
    tables = registered_tables()
    owned: dict[type[Table], set[int]] = {table: set() for table in tables}
    owned[Merchant] = {merchant_id}
    rows: Snapshot = {}
    unattributed = [t._meta.tablename for t in tables if t is not Merchant and not _references(t)]
    assert not unattributed, f"teach the snapshot whose rows these are: {unattributed}"
    grew = True
    while grew:
        grew = False
        for table in tables:
            if table is Merchant:
                continue
            conditions = [
                getattr(table, name).is_in(sorted(owned[target]))
                for name, target in _references(table).items()
                if owned.get(target)
            ]
            if not conditions:
                continue
            where: Where | Or = conditions[0]
            for condition in conditions[1:]:
                where = Or(where, condition)
            found = await table.select().where(where).order_by(table._meta.primary_key)
            rows[table._meta.tablename] = found
            ids = {int(row["id"]) for row in found}
            if not ids <= owned[table]:
                owned[table] |= ids
                grew = True
    rows["merchant"] = await Merchant.select().where(Merchant.id == merchant_id)
    return rows


async def build_tenant(marker: str) -> Tenant:
    """:func:`_build_tenant` with the jobs it starts (sends, a test send) kept off the
    session's worker: they stay on record, and nothing runs them behind later tests."""
    with jobs_go_nowhere():
        return await _build_tenant(marker)
