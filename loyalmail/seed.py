"""Seed the demo shop: a merchant with its brand, an owner login, customers and purchases.

Idempotent, keyed on the merchant's slug ``demo``: a second ``loyalmail demo`` on the same
data directory finds the shop and leaves it alone. Everything is written in one transaction,
so an interrupted seed leaves nothing behind and the next start seeds again.

Deterministic (seeded ``random`` and Faker) for a given day, and fast: customers, consent
events and purchases go in with multi-row inserts, and the derived customer columns
(purchase count, refunds, lifetime value, first and last purchase) are computed by one
set-based UPDATE afterwards instead of row by row. The customer services are not used on
purpose: they send opt-in mail and recompute per purchase, which 5,000 customers don't need.

Every address is on a reserved ``.example`` domain (RFC 2606): even a demo pointed at a real
SMTP server can never write to a real person.
"""

from __future__ import annotations

import json
import math
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from faker import Faker
from piccolo.table import Table

from accounts import services as accounts
from accounts.schemas import MerchantCreate
from accounts.tables import Merchant
from campaigns import services as campaigns
from campaigns.schemas import Audience, CampaignCreate
from customers import queries as customer_queries
from customers.tables import ConsentEvent, Customer, Purchase
from quota import services as quota

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@loyalmail.example"
DEMO_PASSWORD = "demo-password-1"
#: Fixed, so that the same day always produces the same shop.
RANDOM_SEED = 20261123
#: Purchases reach this far back.
HISTORY_DAYS = 730
WORDING_VERSION = "newsletter-consent-2025-01"

DEMO_BRAND = MerchantCreate(
    slug=DEMO_SLUG,
    name="Nordlicht Kaffeerösterei",
    imprint=(
        "Nordlicht Kaffeerösterei GmbH · Oranienstraße 42 · 10999 Berlin\n"
        "Geschäftsführerin: Lena Nordmann · Amtsgericht Charlottenburg HRB 123456 B\n"
        "USt-IdNr. DE123456789"
    ),
    publisher="Nordlicht Kaffeerösterei GmbH",
    copyright="© 2026 Nordlicht Kaffeerösterei GmbH",
    street="Oranienstraße 42",
    postal_code="10999",
    city="Berlin",
    country="DE",
    opening_hours="Mon–Fri 8:00–19:00\nSat 9:00–18:00\nSun closed",
    contact_email="hallo@nordlicht-kaffee.example",
    contact_phone="+49 30 1234567",
    website_url="https://nordlicht-kaffee.example",
    privacy_policy_url="https://nordlicht-kaffee.example/datenschutz",
    sender_name="Nordlicht Kaffeerösterei",
    sender_email="news@nordlicht-kaffee.example",
    default_locale="de",
    time_zone="Europe/Berlin",
    currency="EUR",
    brand_color="#0f766e",
)


@dataclass(frozen=True, slots=True)
class Market:
    """Where a customer lives: the Faker locale for names, and what we store."""

    faker_locale: str | None  # None: Faker has no such locale, names come from SERBIAN below
    locale: str
    country: str
    weight: int
    mail_domains: tuple[str, ...]


# Faker has no nb_NO (its Norwegian Bokmål data is no_NO) and no sr_RS: Serbian names come
# from the short Latin-script lists below.
MARKETS: tuple[Market, ...] = (
    Market("de_DE", "de", "DE", 40, ("gmx.example", "web.example", "posteo.example")),
    Market("en_GB", "en", "GB", 15, ("gmail.example", "outlook.example", "btinternet.example")),
    Market("fr_FR", "fr", "FR", 15, ("orange.example", "free.example", "laposte.example")),
    Market("no_NO", "nb", "NO", 10, ("online.example", "telenor.example")),
    Market("fi_FI", "fi", "FI", 10, ("elisa.example", "kolumbus.example")),
    Market(None, "sr", "RS", 10, ("eunet.example", "gmail.example")),
)

SERBIAN_FEMALE = (
    "Ana", "Jelena", "Milica", "Marija", "Jovana", "Ivana", "Dragana", "Tijana", "Snežana",
    "Katarina", "Mirjana", "Nevena", "Teodora", "Sanja", "Vesna", "Ljiljana",
)  # fmt: skip
SERBIAN_MALE = (
    "Marko", "Nikola", "Stefan", "Miloš", "Aleksandar", "Dragan", "Nemanja", "Dušan", "Luka",
    "Vuk", "Đorđe", "Petar", "Bojan", "Zoran", "Vladimir", "Uroš",
)  # fmt: skip
SERBIAN_LAST = (
    "Jovanović", "Petrović", "Nikolić", "Marković", "Đorđević", "Stojanović", "Ilić",
    "Stanković", "Pavlović", "Milošević", "Popović", "Živković", "Todorović", "Kostić",
    "Savić", "Lazić", "Vasić", "Radovanović",
)  # fmt: skip
# Real places, so that the city filter and the export group like a real list would. Faker's
# towns are invented for en_GB, fr_FR and no_NO. A Berlin roastery's Germans mostly live there.
PLACES: dict[str, tuple[tuple[str, str], ...]] = {
    "DE": (
        ("Berlin", "10115"), ("Berlin", "10178"), ("Berlin", "10243"), ("Berlin", "10405"),
        ("Berlin", "10437"), ("Berlin", "10553"), ("Berlin", "10709"), ("Berlin", "10961"),
        ("Berlin", "10997"), ("Berlin", "12043"), ("Berlin", "12435"), ("Berlin", "13347"),
        ("Potsdam", "14467"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667"),
        ("Leipzig", "04109"), ("Dresden", "01067"), ("Frankfurt am Main", "60311"),
    ),
    "GB": (
        ("London", "SW1A 1AA"), ("London", "E1 6AN"), ("London", "N1 9GU"),
        ("Manchester", "M1 1AE"), ("Bristol", "BS1 4DJ"), ("Edinburgh", "EH1 1YZ"),
        ("Leeds", "LS1 4AP"), ("Brighton", "BN1 1EE"), ("Oxford", "OX1 2JD"),
    ),
    "FR": (
        ("Paris", "75003"), ("Paris", "75011"), ("Paris", "75018"), ("Lyon", "69002"),
        ("Marseille", "13001"), ("Lille", "59000"), ("Bordeaux", "33000"),
        ("Strasbourg", "67000"), ("Nantes", "44000"), ("Toulouse", "31000"),
    ),
    "NO": (
        ("Oslo", "0150"), ("Oslo", "0456"), ("Oslo", "0557"), ("Bergen", "5003"),
        ("Trondheim", "7010"), ("Stavanger", "4006"), ("Tromsø", "9008"), ("Drammen", "3015"),
    ),
    "FI": (
        ("Helsinki", "00100"), ("Helsinki", "00530"), ("Espoo", "02100"), ("Tampere", "33100"),
        ("Turku", "20100"), ("Oulu", "90100"), ("Jyväskylä", "40100"), ("Vantaa", "01300"),
    ),
    "RS": (
        ("Beograd", "11000"), ("Beograd", "11070"), ("Novi Sad", "21000"), ("Niš", "18000"),
        ("Kragujevac", "34000"), ("Subotica", "24000"), ("Čačak", "32000"), ("Pančevo", "26000"),
    ),
}  # fmt: skip

ROASTS = ("Espresso", "Filter", "Decaf", "Cold brew", "Single origin", "Tea")
STORES = ("Kreuzberg", "Prenzlauer Berg", "Online shop", "Friedrichshain")
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile",
)
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "đ": "dj", "Đ": "dj", "ł": "l"}
)
CHUNK_ROWS = 400


@dataclass(frozen=True, slots=True)
class SeedResult:
    merchant_id: int
    #: False when the shop existed already and nothing was written.
    created: bool
    customers: int
    purchases: int


async def seed_demo(customers: int = 5000, *, today: date | None = None) -> SeedResult:
    """The demo shop, created once; later calls return what is there."""
    existing = await Merchant.select(Merchant.id).where(Merchant.slug == DEMO_SLUG).first()
    if existing is not None:
        return await _existing(int(existing["id"]))
    today = today or datetime.now(UTC).date()
    async with Merchant._meta.db.transaction():
        merchant = await accounts.create_merchant(DEMO_BRAND)
        owner = await accounts.create_user(
            merchant.id, DEMO_EMAIL, DEMO_PASSWORD, name="Lena Nordmann", role="owner"
        )
        purchases = await _seed_customers(merchant.id, max(customers, 0), today)
        # A draft ready for its summary step, so a test send is two clicks away in the demo.
        await campaigns.create_campaign(
            merchant.id,
            CampaignCreate(
                name="Autumn newsletter",
                subject="{{ salutation }}, autumn is here",
                preheader="New arrivals, and double points for members until the end of the month",
                audience=Audience(predefined="network_members"),
                layout="offer",
            ),
            created_by=owner.id,
        )
    # A bought pack beside this month's allowance (2 × the loyal customers just seeded), so the
    # quota page shows both kinds of source.
    await quota.buy_pack(merchant.id, "demo-welcome-pack")
    return SeedResult(merchant.id, created=True, customers=max(customers, 0), purchases=purchases)


async def _existing(merchant_id: int) -> SeedResult:
    return SeedResult(
        merchant_id,
        created=False,
        customers=await Customer.count().where(Customer.merchant == merchant_id),
        purchases=await Purchase.count().where(Purchase.merchant == merchant_id),
    )


async def _insert(table: type[Table], rows: Sequence[dict[str, Any]]) -> None:
    """Multi-row INSERTs with bound parameters, in chunks that stay under both engines' limits.

    Plain SQL rather than ``Table.insert(*objects)``: building Piccolo objects for 40,000 rows
    took four fifths of the seeding time. A key a row lacks gets the column's default.
    """
    if not rows:
        return
    names = list(dict.fromkeys(key for row in rows for key in row))
    defaults = {name: table._meta.get_column_by_name(name).get_default_value() for name in names}
    column_list = ", ".join(f'"{name}"' for name in names)
    row_slots = "(" + ", ".join("{}" for _ in names) + ")"
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        values = [row.get(name, defaults[name]) for row in chunk for name in names]
        slots = ", ".join(row_slots for _ in chunk)
        await table.raw(
            f"INSERT INTO {table._meta.tablename} ({column_list}) VALUES {slots}",  # noqa: S608 - names come from our own tables
            *values,
        )


def _history_end(today: date) -> datetime:
    # The seeded history ends as today begins: nothing is dated later than the moment the demo
    # starts, whatever the hour, and the same day always gives the same data.
    return datetime.combine(today, time(0, 0), tzinfo=UTC)


def build_people(count: int, today: date) -> list[dict[str, Any]]:
    """The customer rows, without merchant: the same list for the same count and day."""
    rng = random.Random(RANDOM_SEED)
    fakers: dict[str, Faker] = {}
    for market in MARKETS:
        if market.faker_locale:
            fake = Faker(market.faker_locale)
            fake.seed_instance(RANDOM_SEED)
            fakers[market.faker_locale] = fake
    people = [_person(rng, fakers, i, today, _history_end(today)) for i in range(count)]
    _unique_emails(people)
    return people


async def _seed_customers(merchant_id: int, count: int, today: date) -> int:
    people = build_people(count, today)
    for person in people:
        person["merchant"] = merchant_id
    await _insert(Customer, people)

    ids = {
        row["email_normalized"]: row["id"]
        for row in await Customer.select(Customer.id, Customer.email_normalized).where(
            Customer.merchant == merchant_id
        )
    }
    # A second stream: the customers stay the same whatever changes in the purchases.
    rng = random.Random(RANDOM_SEED + 1)
    now = _history_end(today)
    consent: list[dict[str, Any]] = []
    purchases: list[dict[str, Any]] = []
    for person in people:
        customer_id = ids[person["email_normalized"]]
        consent.extend(_consent_events(rng, merchant_id, customer_id, person, now))
        purchases.extend(_purchases(rng, merchant_id, customer_id, person, now))
    await _insert(ConsentEvent, consent)
    await _insert(Purchase, purchases)
    await recompute_derived(merchant_id)
    return len(purchases)


async def recompute_derived(merchant_id: int) -> None:
    """The customer columns derived from purchases, for every customer of the merchant at once:
    the assignments the purchase service runs for one customer (customers.queries)."""
    await Customer.raw(
        f"UPDATE customer SET {customer_queries.derived_assignments()}"  # noqa: S608 - constants
        " WHERE merchant = {}",
        merchant_id,
    )


def _ascii(text: str) -> str:
    flat = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return "".join(c for c in flat.lower() if c.isascii() and (c.isalnum() or c == "-"))


def _person(
    rng: random.Random, fakers: dict[str, Faker], index: int, today: date, now: datetime
) -> dict[str, Any]:
    market = rng.choices(MARKETS, weights=[m.weight for m in MARKETS])[0]
    gender = rng.choices(("female", "male", "diverse", ""), weights=(48, 46, 2, 4))[0]
    if market.faker_locale is None:
        first = rng.choice(SERBIAN_MALE if gender == "male" else SERBIAN_FEMALE)
        last = rng.choice(SERBIAN_LAST)
        phone = f"+381 6{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    else:
        fake = fakers[market.faker_locale]
        first = {"female": fake.first_name_female, "male": fake.first_name_male}.get(
            gender, fake.first_name
        )()
        last = fake.last_name()
        phone = fake.phone_number()
    city, postal_code = rng.choice(PLACES[market.country])

    # Newest customers cluster in the last weeks so the dashboard has something to show.
    age_days = rng.randint(0, 20) if rng.random() < 0.04 else rng.randint(21, 900)
    created_at = (now - timedelta(days=age_days, minutes=rng.randint(0, 600))).replace(
        microsecond=0
    )
    customer_type = rng.choices(("loyal", "member", "non_member"), weights=(45, 20, 35))[0]
    state = rng.choices(("verified", "pending", "unverified", "unsubscribed"), (78, 8, 7, 7))[0]
    source = rng.choices(("form", "qr", "import", "marketer"), weights=(35, 20, 30, 15))[0]
    custom: dict[str, object] = {
        "favourite_roast": rng.choice(ROASTS),
        "home_store": rng.choice(STORES),
        "owns_grinder": rng.random() < 0.4,
    }
    if customer_type == "loyal":
        custom["loyalty_card"] = f"NL-{100000 + index:06d}"

    local = rng.choice(
        (f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)}{_ascii(last)}",
         f"{_ascii(first)[:1]}.{_ascii(last)}", f"{_ascii(first)}{rng.randint(1, 99)}")
    )  # fmt: skip
    email = f"{local}@{rng.choice(market.mail_domains)}"
    unsubscribed_at = None
    if state == "unsubscribed":
        # After the confirmation, which comes within two days of signing up.
        confirmed_by = created_at + timedelta(days=2)
        if confirmed_by < now:
            unsubscribed_at = confirmed_by + (now - confirmed_by) * rng.uniform(0.1, 0.95)
        else:
            state = "verified"
    return {
        "email": email,
        "email_normalized": email.lower(),
        "first_name": first,
        "last_name": last,
        "gender": gender,
        "birth_date": _birth_date(rng, index, today),
        "locale": market.locale,
        "country": market.country,
        "city": city[:100],
        "postal_code": postal_code[:20],
        "phone": phone[:50],
        "customer_type": customer_type,
        "email_status": "verified" if state == "unsubscribed" else state,
        # Every verified address of the demo was confirmed with the link (the consent log
        # below says so): they count for the allowance.
        "confirmed_by_recipient": state in {"verified", "unsubscribed"},
        "subscribed": state != "unsubscribed",
        "unsubscribed_at": unsubscribed_at.replace(microsecond=0) if unsubscribed_at else None,
        "source": source,
        "custom_fields": json.dumps(custom, ensure_ascii=False),
        "optin_sent_at": None if state == "unverified" else created_at,
        "created_at": created_at,
        "updated_at": created_at,
    }


def _birth_date(rng: random.Random, index: int, today: date) -> date | None:
    if index == 7:
        return date(1988, 2, 29)  # someone always has the birthday that skips three years
    roll = rng.random()
    if roll < 0.12:
        return None
    year = today.year - rng.randint(18, 78)
    if roll < 0.16:
        # About 4 %: a birthday in the coming four weeks, for the dashboard and the segment.
        day = today + timedelta(days=rng.randint(0, 27))
        if day.month == 2 and day.day == 29:
            year -= year % 4  # a leap year; fine for every year in range
        return date(year, day.month, day.day)
    return date(year, 1, 1) + timedelta(days=rng.randint(0, 364))


def _unique_emails(people: list[dict[str, Any]]) -> None:
    # email_normalized is unique per merchant: a collision gets a number, deterministically.
    seen: set[str] = set()
    for person in people:
        local, _, domain = person["email"].partition("@")
        candidate, n = person["email"], 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{local}{n}@{domain}"
        seen.add(candidate.lower())
        person["email"], person["email_normalized"] = candidate, candidate.lower()


def _consent_events(
    rng: random.Random,
    merchant_id: int,
    customer_id: int,
    person: dict[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    created: datetime = person["created_at"]
    base = {"merchant": merchant_id, "customer": customer_id, "email": person["email"]}
    web = person["source"] in ("form", "qr")
    # Every address has its request: when, how and from where it was collected.
    events = [
        {
            **base,
            "action": "requested",
            "source": person["source"],
            "ip": f"203.0.113.{rng.randint(1, 254)}" if web else "",
            "user_agent": rng.choice(BROWSERS) if web else "",
            "wording_version": WORDING_VERSION,
            "actor": DEMO_EMAIL if person["source"] == "marketer" else "",
            "created_at": created,
        }
    ]
    if person["email_status"] == "verified":
        events.append(
            {
                **base,
                "action": "confirmed",
                "source": "link",
                "ip": f"198.51.100.{rng.randint(1, 254)}",
                "user_agent": rng.choice(BROWSERS),
                "wording_version": WORDING_VERSION,
                "created_at": min(created + timedelta(minutes=rng.randint(2, 2880)), now),
            }
        )
    if person["unsubscribed_at"] is not None:
        events.append(
            {
                **base,
                "action": "withdrawn",
                "source": "link",
                "ip": f"198.51.100.{rng.randint(1, 254)}",
                "user_agent": rng.choice(BROWSERS),
                "created_at": person["unsubscribed_at"],
            }
        )
    return events


_MEAN_PURCHASES = {"loyal": 10.0, "member": 5.0, "non_member": 2.5}


def _purchases(
    rng: random.Random,
    merchant_id: int,
    customer_id: int,
    person: dict[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    if rng.random() < 0.12:
        return []  # signed up, never bought: the "lost"/"first purchase" segments need them
    start = max(person["created_at"], now - timedelta(days=HISTORY_DAYS))
    span_days = (now - start).days
    if span_days < 1:
        return []
    # A regular buys about that often over two years; someone who joined last month, a little.
    mean = _MEAN_PURCHASES[person["customer_type"]] * span_days / HISTORY_DAYS
    count = 1 + int(rng.expovariate(1 / max(mean, 0.05)))
    rows: list[dict[str, Any]] = []
    for n in range(count):
        # On a day before today, while the shop is open (about 8:00 to 19:00 in Berlin).
        day = (now - timedelta(days=rng.randint(1, span_days))).date()
        opening = time(rng.randint(7, 17), rng.randint(0, 59), rng.randint(0, 59))
        at = max(datetime.combine(day, opening, tzinfo=UTC), start)
        # Prices like 12.90: log-normal around 35 EUR, in cents.
        amount = max(290, int(math.exp(rng.gauss(math.log(3500), 0.6)) // 100 * 100 - 10))
        reference = f"POS-{customer_id:05d}-{n + 1:03d}"
        rows.append(_purchase(merchant_id, customer_id, "purchase", amount, at, reference))
        roll = rng.random()
        later = at + timedelta(days=rng.randint(1, 21), minutes=rng.randint(0, 90))
        if roll < 0.05 and later < now:
            refund = amount if rng.random() < 0.7 else amount // 2
            rows.append(_purchase(merchant_id, customer_id, "refund", refund, later, reference))
        elif roll < 0.08 and later < now:
            difference = rng.choice((-1, 1)) * rng.randint(1, 25) * 100
            rows.append(
                _purchase(merchant_id, customer_id, "exchange", difference, later, reference)
            )
    return rows


def _purchase(
    merchant_id: int, customer_id: int, kind: str, amount: int, at: datetime, reference: str
) -> dict[str, Any]:
    return {
        "merchant": merchant_id,
        "customer": customer_id,
        "kind": kind,
        "amount_minor": amount,
        "currency": "EUR",
        "occurred_at": at,
        "reference": reference,
        "created_at": at,
    }
