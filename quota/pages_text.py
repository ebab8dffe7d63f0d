"""Words of the quota as the marketer reads it: the history's kinds and notes, the dashboard
card's hint and the composer's "what this send uses" sentence, in the page's language.

Numbers and dates are formatted here with babel, so every sentence is one translatable text
with its figures filled in (a German page says "10.000", not "10,000").
"""

from __future__ import annotations

from datetime import date

from babel import dates

from loyalmail.errors import _
from loyalmail.i18n import babel_locale, format_day, format_number, gettext, ngettext
from quota.schemas import HistoryEntry, QuotaOverview, SendEstimate, TestSends
from quota.services.common import PACK_SIZE

#: What each journal entry did, as the history table names it.
KIND_LABELS = {
    "grant": _("Granted"),
    "purchase": _("Pack bought"),
    "reserve": _("Reserved for a send"),
    "spend": _("Sent"),
    "release": _("Given back"),
    "expire": _("Expired"),
}

#: Units coming in (+) or going out (−) of what is available.
KIND_SIGNS = {"grant": "+", "purchase": "+", "release": "+", "reserve": "−", "expire": "−"}


def details(entry: HistoryEntry) -> str:
    """What an entry was computed from or did, in the page's language, from its fields (the
    journal's English note is for whoever reads the journal itself)."""
    if entry.loyal_customers is not None:
        text = (
            _("getting started: 2 × {loyal} loyal customers")
            if entry.first_month
            else _("2 × {loyal} loyal customers")
        )
        return gettext(text).format(loyal=format_number(entry.loyal_customers))
    if entry.packs is not None:
        return gettext(_("{packs} × {size}")).format(
            packs=format_number(entry.packs), size=format_number(PACK_SIZE)
        )
    if entry.spent is not None and entry.released is not None:
        return gettext(_("{spent} spent, {released} given back")).format(
            spent=format_number(entry.spent), released=format_number(entry.released)
        )
    if entry.kind == "grant" and entry.source_kind == "test":
        return gettext(_("test sends"))
    return ""


def month_name(period: str) -> str:
    """'2026-11' → "November" (the name alone, as in "November's allowance")."""
    month = int(period[5:7]) if len(period) == 7 else 0
    return str(babel_locale().months["stand-alone"]["wide"].get(month, period))


def month_and_year(period: str) -> str:
    """'2026-11' → "November 2026"."""
    if len(period) != 7:
        return period
    first = date(int(period[:4]), int(period[5:7]), 1)
    return str(dates.format_skeleton("yMMMM", first, locale=babel_locale()))


def source_label(entry: HistoryEntry) -> str:
    """Where the units of a history entry came from or went to."""
    if entry.source_kind == "allowance":
        return gettext(_("Allowance {month}")).format(month=month_and_year(entry.source_period))
    if entry.source_kind == "test":
        return gettext(_("Test sends {month}")).format(month=month_and_year(entry.source_period))
    if entry.source_kind == "pack":
        return gettext(_("Pack {reference}")).format(reference=entry.source_reference)
    return ""


def dashboard_hint(overview: QuotaOverview) -> str:
    """The dashboard card's line under the figure: what of it is the allowance and what packs."""
    allowance = overview.allowance
    packs = format_number(overview.packs_available)
    if allowance is None:
        return gettext(_("packs: {packs}")).format(packs=packs)
    values = {
        "left": format_number(allowance.available),
        "month": month_name(allowance.period),
        "date": format_day(allowance.expires_on, "long"),
        "packs": packs,
    }
    if overview.packs_available:
        text = _("{left} of {month}'s allowance, expiring {date}; packs: {packs}")
    else:
        text = _("{left} of {month}'s allowance, expiring {date}")
    return gettext(text).format(**values)


def estimate_sentence(estimate: SendEstimate) -> str:
    """What a send would use: from which sources, and what is left of them afterwards."""
    if estimate.needed == 0:
        return gettext(_("This send uses no quota: the target group is empty."))
    if not estimate.fits:
        return ngettext(
            "This send needs {needed} but only {available} are available: buy {packs} pack "
            "of {size} or choose a smaller group.",
            "This send needs {needed} but only {available} are available: buy {packs} packs "
            "of {size} or choose a smaller group.",
            estimate.packs_needed,
        ).format(
            needed=format_number(estimate.needed),
            available=format_number(estimate.available),
            packs=format_number(estimate.packs_needed),
            size=format_number(estimate.pack_size),
        )
    allowance = [d for d in estimate.draws if d.kind == "allowance"]
    from_allowance = sum(d.units for d in allowance)
    from_packs = sum(d.units for d in estimate.draws if d.kind == "pack")
    # The allowance is drawn first: whatever it had is in its draw (units + what is left).
    packs_before = estimate.available - sum(d.units + d.left_after for d in allowance)
    values = {
        "units": format_number(estimate.needed),
        "allowance_units": format_number(from_allowance),
        "pack_units": format_number(from_packs),
        "packs_left": format_number(packs_before - from_packs),
        "packs": format_number(packs_before),
        "month": month_name(allowance[0].period) if allowance else "",
        "date": format_day(allowance[0].expires_on, "long") if allowance else "",
        "left": format_number(sum(d.left_after for d in allowance)),
    }
    if not from_packs:
        if packs_before:
            text = _(
                "This send uses {units}: all from {month}'s allowance, {left} left after it, "
                "expiring {date}; packs: {packs}."
            )
        else:
            text = _(
                "This send uses {units}: all from {month}'s allowance, {left} left after it, "
                "expiring {date}."
            )
    elif not from_allowance:
        text = _("This send uses {units}: all from packs; {packs_left} left in packs.")
    else:
        text = _(
            "This send uses {units}: {allowance_units} from {month}'s allowance (expiring "
            "{date}) and {pack_units} from packs; {packs_left} left in packs."
        )
    return gettext(text).format(**values)


def describe_test_sends(test_sends: TestSends) -> str:
    return gettext(_("{left} of {granted} test sends left this month; new ones on {date}.")).format(
        left=format_number(test_sends.left),
        granted=format_number(test_sends.granted),
        date=format_day(test_sends.renews_on, "long"),
    )
