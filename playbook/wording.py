"""How reasons read: signed points, relative ages, sentence templates."""

from __future__ import annotations

from leadloop.crm.records import ActivityKind

DAY = 86400.0

VERBS: dict[ActivityKind, str] = {
    ActivityKind.PAGE_VIEW: "visited {asset}",
    ActivityKind.FORM_FILL: "filled in {asset}",
    ActivityKind.ASSET_DOWNLOAD: "downloaded {asset}",
    ActivityKind.EVAL_KIT_REQUEST: "requested {asset}",
    ActivityKind.SAMPLE_REQUEST: "requested {asset}",
    ActivityKind.DEMO_REQUEST: "requested a demo ({asset})",
    ActivityKind.CONTACT_SALES: "asked to talk to sales ({asset})",
    ActivityKind.WEBINAR_REGISTERED: "registered for {asset}",
    ActivityKind.WEBINAR_ATTENDED: "attended {asset}",
    ActivityKind.TRADE_SHOW_SCAN: "was scanned at {asset}",
    ActivityKind.WORKSHOP_ATTENDED: "attended {asset}",
    ActivityKind.PARTNER_REFERRAL: "was referred by a partner ({asset})",
    ActivityKind.EMAIL_OPEN: "opened {asset}",
    ActivityKind.EMAIL_CLICK: "clicked {asset}",
    ActivityKind.UNSUBSCRIBE: "unsubscribed",
    ActivityKind.HARD_BOUNCE: "hard-bounced",
    ActivityKind.SALES_CALL: "took a sales call",
    ActivityKind.SALES_EMAIL: "exchanged email with sales",
    ActivityKind.MEETING: "met with sales",
}


def number(value: float) -> str:
    """12 → `12`, 2.5 → `2.5`, 2.04 → `2`: one decimal at most, none when whole."""
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def signed(value: float) -> str:
    """`+25`, `-6`, `+2.5` (a value that rounds to zero reads `+0`)."""
    text = f"{value:+.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "+0" if text == "-0" else text


def ago(seconds: float) -> str:
    """A relative age: `just now`, `3 hours ago`, `2 days ago`, `5 weeks ago`, `4 months ago`."""
    if seconds < 3600:
        return "just now" if seconds < 120 else f"{int(seconds // 60)} minutes ago"
    if seconds < DAY:
        hours = int(seconds // 3600)
        return "1 hour ago" if hours == 1 else f"{hours} hours ago"
    days = int(seconds // DAY)
    if days < 14:
        return "1 day ago" if days == 1 else f"{days} days ago"
    if days < 63:
        return f"{days // 7} weeks ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def days(value: float) -> str:
    return "1 day" if value == 1 else f"{number(value)} days"


def fill(template: str, **values: object) -> str:
    """A `says` template with {asset}, {count} and {window} filled (missing ones left readable)."""
    return template.format_map(_Defaults(values))


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return key
