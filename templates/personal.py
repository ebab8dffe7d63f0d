"""A recipient's placeholder values: salutations by language and gender, babel-formatted
birthdays and money in the recipient's locale.

Salutations come from the "email" catalogs, so a translator decides the form; the code
only picks which one applies:

* gender female / male and a last name → the formal form ("Sehr geehrte Frau Müller",
  "Cher Monsieur Dupont");
* otherwise a name → the neutral form with the name ("Hello Alex Smith");
* no name at all → the neutral greeting ("Hello"), or the fallback the marketer wrote.

Serbian texts are in Latin script. Serbian addresses a man in the vocative: surnames
ending in -ić take -iću ("Poštovani gospodine Petroviću"). Other surnames keep the
nominative, which is usual in Serbian business letters; women's surnames do not decline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache, lru_cache

from babel import Locale, UnknownLocaleError, dates, numbers

from loyalmail.i18n import email_gettext, recipient_locale
from templates.placeholders import PLACEHOLDERS

PLACEHOLDER_NAMES = frozenset(PLACEHOLDERS)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What personalisation may read of a customer; nothing else reaches a message."""

    email: str
    first_name: str = ""
    last_name: str = ""
    gender: str = ""
    city: str = ""
    birth_date: date | None = None
    lifetime_value: Decimal | None = None
    currency: str = "EUR"
    #: The customer's locale ("de_AT"); empty: the merchant's default.
    locale: str = ""


@cache
def babel_locale_for(locale: str, language: str) -> Locale:
    """The most specific babel locale we can use: "de_AT" as given, Serbian in Latin script
    (our Serbian texts are Latin), else the language alone."""
    if language == "sr":
        return Locale.parse("sr_Latn")
    try:
        parsed = Locale.parse(locale.replace("-", "_")) if locale else None
    except (UnknownLocaleError, ValueError, TypeError):
        parsed = None
    if parsed is not None and parsed.language == language:
        return parsed
    return Locale.parse(language)


def serbian_vocative(last_name: str) -> str:
    """Petrović → Petroviću (also in Cyrillic: Петровић → Петровићу); other names unchanged."""
    for ending, suffix in (("ić", "u"), ("IĆ", "U"), ("ић", "у"), ("ИЋ", "У")):
        if last_name.endswith(ending):
            return last_name + suffix
    return last_name


@dataclass(frozen=True, slots=True)
class _Forms:
    ms: str
    mr: str
    hello_name: str
    hello: str


@cache
def _forms(language: str) -> _Forms:
    # Looked up once per language: salutation() runs for every recipient of a send.
    return _Forms(
        ms=email_gettext(language, "Dear Ms %(last_name)s"),
        mr=email_gettext(language, "Dear Mr %(last_name)s"),
        hello_name=email_gettext(language, "Hello %(full_name)s"),
        hello=email_gettext(language, "Hello"),
    )


def salutation(recipient: Recipient, language: str) -> str:
    """The greeting for ``recipient``; never empty (see the module docstring)."""
    forms = _forms(language)
    first, last = recipient.first_name.strip(), recipient.last_name.strip()
    full = f"{first} {last}" if first and last else first or last
    if last and recipient.gender in {"female", "male"}:
        if recipient.gender == "female":
            return forms.ms % {"last_name": last, "first_name": first, "full_name": full}
        vocative = serbian_vocative(last) if language == "sr" else last
        return forms.mr % {"last_name": vocative, "first_name": first, "full_name": full}
    if full:
        return forms.hello_name % {"full_name": full}
    return forms.hello


def neutral_salutation(language: str) -> str:
    return _forms(language).hello


@lru_cache(maxsize=4096)
def format_birthday(birth_date: date | None, locale: Locale) -> str:
    """Day and month in the recipient's locale; at most 366 × locales distinct values, so
    cached (babel takes several microseconds per call, personalisation has ~30)."""
    if birth_date is None:
        return ""
    return dates.format_skeleton("MMMMd", birth_date.replace(year=2000), locale=locale)


def format_money(amount: Decimal | None, currency: str, locale: Locale) -> str:
    if amount is None:
        return ""
    fast = _money_formatter(locale, currency)
    if fast is None or amount < 0:
        return numbers.format_currency(amount, currency, locale=locale)
    return fast(amount)


@lru_cache(maxsize=256)
def _money_formatter(locale: Locale, currency: str) -> Callable[[Decimal], str] | None:
    """Babel's currency format for (locale, currency), read from babel once and applied
    without it: ``format_currency`` costs ~11 µs a call, a third of a recipient's budget.
    Only the plain shape ("¤#,##0.00", "#,##0.00 ¤", grouping by 3s or 3-then-2s) is taken;
    anything else returns None and babel formats. tests/templates/test_personal.py checks it
    against babel for every recipient locale."""
    pattern = locale.currency_formats["standard"]
    if any(mark in pattern.pattern for mark in ("¤¤", "'", "%", "@", "E")):
        return None
    symbols = locale.number_symbols.get("latn", locale.number_symbols)
    symbol = numbers.get_currency_symbol(currency, locale)
    digits = numbers.get_currency_precision(currency)
    primary, secondary = pattern.grouping
    group, decimal = symbols["group"], symbols["decimal"]
    prefix = pattern.prefix[0].replace("¤", symbol)
    suffix = pattern.suffix[0].replace("¤", symbol)
    step = Decimal(1).scaleb(-digits)

    def apply(amount: Decimal) -> str:
        whole, _, fraction = f"{amount.quantize(step, ROUND_HALF_EVEN):f}".partition(".")
        parts = [whole[-primary:]] if len(whole) > primary else [whole]
        rest = whole[:-primary] if len(whole) > primary else ""
        while rest:
            parts.append(rest[-secondary:])
            rest = rest[:-secondary]
        number = group.join(reversed(parts))
        return f"{prefix}{number}{decimal + fraction if digits else ''}{suffix}"

    return apply


def values(
    recipient: Recipient,
    merchant_locale: str,
    names: frozenset[str] | None = None,
    language: str | None = None,
) -> dict[str, str]:
    """The placeholder values for ``recipient``, unescaped; empty where unknown. Only
    ``names`` are worked out when given (a message uses a few; babel's money formatting is the
    costly one).

    ``salutation`` is empty when only the neutral greeting applies, so that a fallback the
    marketer wrote wins; :func:`templates.message.recipient_values` puts the neutral greeting there
    when there is no fallback either.
    """
    wanted = PLACEHOLDER_NAMES if names is None else names
    if language is None:  # a caller holding a message compiled for the language passes it
        language = recipient_locale(recipient.locale, merchant_locale)
    first, last = recipient.first_name.strip(), recipient.last_name.strip()
    out: dict[str, str] = {}
    if "salutation" in wanted:
        greeting = salutation(recipient, language)
        out["salutation"] = "" if greeting == neutral_salutation(language) else greeting
    if "first_name" in wanted:
        out["first_name"] = first
    if "last_name" in wanted:
        out["last_name"] = last
    if "full_name" in wanted:
        out["full_name"] = " ".join(part for part in (first, last) if part)
    if "email" in wanted:
        out["email"] = recipient.email
    if "city" in wanted:
        out["city"] = recipient.city.strip()
    if "birthday" in wanted or "lifetime_value" in wanted:
        locale = babel_locale_for(recipient.locale or merchant_locale, language)
        if "birthday" in wanted:
            out["birthday"] = format_birthday(recipient.birth_date, locale)
        if "lifetime_value" in wanted:
            out["lifetime_value"] = format_money(
                recipient.lifetime_value, recipient.currency, locale
            )
    return out
