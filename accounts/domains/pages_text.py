"""Words of the sending-domain pages (and of the domain list on the deliverability page)."""

from __future__ import annotations

from loyalmail.errors import _

NOTICES = {
    "added": _("The domain was added. Publish the records below, then check them."),
    "checked": _("Checked: the domain is not verified yet. See below what is missing."),
    "verified": _("The records were checked: the domain is verified."),
    "rotated": _("A new key was made. Publish its record; signing switches once it is found."),
    "removed": _("The domain was removed."),
}
STATUS_LABELS = {
    "pending": _("Not verified yet"),
    "verified": _("Verified"),
    "failed": _("Records missing"),
}
CHECK_LABELS = {
    "found": _("Found"),
    "missing": _("Missing"),
    "different": _("Different"),
    "error": _("Not checked: DNS did not answer"),
    "unchecked": _("Not checked yet"),
}
RECORD_LABELS = {
    "dkim": _("DKIM key"),
    "dkim_next": _("Next DKIM key (rotation)"),
    "spf": _("SPF"),
    "dmarc": _("DMARC (recommended)"),
}
