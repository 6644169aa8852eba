"""Where the kiosk's words live: product code returns kinds and codes, and this module turns them into text.

Each code maps to its lazy_gettext text with named placeholders; an error or outcome carrying a `code` (and its
`params`) is said with `say()`, in the language of the page being served.
"""
import json

from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.core.i18n import ngettext

# An order's status (kiosk.ledger.schema.STATUSES), as staff read it.
STATUS = {"pending": _l("pending"), "paid": _l("paid"), "failed": _l("failed"), "canceled": _l("canceled"),
          "refunded": _l("refunded"), "partially_refunded": _l("partially refunded")}

# Why a book's stock moved (the ledger's stock_movements.reason).
MOVEMENT = {"catalog": _l("catalog"), "sale": _l("sale"), "return": _l("return"), "adjust": _l("adjust")}

# How an order was paid (orders.method).
PAID_BY = {"card_present": _l("reader"), "card": _l("typed card")}


def status(code):
    """An order status in words."""
    return str(STATUS.get(code, code or ""))


def movement(code):
    """A stock movement's reason in words."""
    return str(MOVEMENT.get(code, code or ""))


def paid_by(method):
    """How an order was paid, in words ("reader", "typed card")."""
    return str(PAID_BY.get(method, method or ""))


def _counted(kind, n):
    """One part of a sweep's report: "2 settled"."""
    texts = {"settled": ngettext("%(num)d settled", "%(num)d settled", n),
             "adopted": ngettext("%(num)d adopted", "%(num)d adopted", n),
             "attached": ngettext("%(num)d attached", "%(num)d attached", n),
             "canceled": ngettext("%(num)d canceled", "%(num)d canceled", n),
             "refunds": ngettext("%(num)d refund", "%(num)d refunds", n)}
    return texts.get(kind, f"{n} {kind}")


def sweep(result):
    """A check with Stripe as reconcile stores it (JSON: counts, an error) in words; older plain text as it is."""
    try:
        found = json.loads(result or "")
    except ValueError:
        return result or ""
    if not isinstance(found, dict):
        return result
    if "unreachable" in found:
        return _("Stripe could not be reached: %(why)s", why=found["unreachable"])
    parts = [_counted(kind, n) for kind, n in found.get("counts", {}).items() if n]
    if found.get("errors"):
        parts.append(ngettext("%(num)d could not be checked (%(first)s)", "%(num)d could not be checked (%(first)s)",
                              found["errors"], first=found.get("first_error", "")))
    return ", ".join(parts) or _("nothing to do")


def say(error):
    """What a coded error or outcome (with `code` and `params`) says, in the page's language; its own text when it
    carries no code the web layer knows."""
    text = MESSAGES.get(getattr(error, "code", None))
    if text is None:
        return str(getattr(error, "message", None) or error)
    return str(text) % {**getattr(error, "params", {})} if "%(" in str(text) else str(text)


# Coded errors from the ledger, admin and payments rooms: code -> text with the error's params.
MESSAGES = {}
