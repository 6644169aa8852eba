"""Orders and refunds: the order list, one order, and refunding all or part of it through Stripe."""
import re
import uuid

from flask import abort, flash, redirect, render_template, request, url_for

from kiosk.admin import refunds
from kiosk.core import stamps
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.ledger import orders, promotions
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import get_db
from kiosk.web import words
from kiosk.web.staff.base import PAGE_SIZE, bp, major, or_404, page_number
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number


@bp.get("/orders")
def order_list():
    """Orders, newest first, searchable by reference, ISBN or pi_ id, each with the promotions that applied."""
    query = request.args.get("q", "")[:100].strip()
    status = request.args.get("status", "")
    oversold = request.args.get("oversold") == "1"
    page = page_number()
    db = get_db()
    rows, total = orders.find_orders(db, query, status, oversold, page, PAGE_SIZE)
    # Past FOUND_LIMIT matches the search neither counts nor pages further: the page says so.
    shown = min(total, orders.FOUND_LIMIT)
    pages = max(1, -(-shown // PAGE_SIZE))
    savings = promotions.savings_by_order(db, [row["id"] for row in rows])
    return render_template("staff/orders.html", rows=rows, savings=savings, total=shown, more=total > shown,
                           page=min(page, pages), pages=pages, query=query, status=status, oversold=oversold,
                           statuses=orders.STATUSES, today=stamps.today(current_kiosk().settings.zone).isoformat())


def _order_or_404(reference):
    return or_404(orders.get(get_db(), reference=reference[:40]))


@bp.get("/orders/<reference>")
def order_detail(reference):
    """One order: lines (list price, discount, paid), savings, refunds, stock movements, and the books to pick for
    a refund."""
    db, order = get_db(), _order_or_404(reference)
    # Copies back on the shelf, or held for a refund Stripe has not confirmed yet, cannot be returned again.
    held = refund_ledger.held_or_returned(db, order["id"])
    lines = [{**dict(line), "returnable": line["quantity"] - held.get(line["isbn"], 0)}
             for line in orders.lines(db, order["id"])]
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    return render_template("staff/order.html", order=order, lines=lines, left=left,
                           savings=promotions.order_savings(db, order["id"]),
                           refunds=refund_ledger.refunds(db, order["id"]), movements=shelves.movements(db, order["id"]),
                           refundable=order["status"] in orders.REFUNDABLE and current_kiosk().gateway is not None)


def _refund_choice(db, order, form):
    """The books coming back (ISBN -> copies) and the custom amount typed (None: refund what the books come to)
    that a refund form (`form`: the order page's query or the review's post) asks for."""
    returned = {line["isbn"]: whole_number(form.get(f"return-{line['isbn']}"), 3, default=0)
                for line in orders.lines(db, order["id"])}
    custom = form.get("amount", "")[:20] if form.get("mode") == "custom" else None
    return returned, custom


@bp.get("/orders/<reference>/refund")
def refund_review(reference):
    """The refund staff are about to make: what goes back to which card and which books go back on the shelf,
    to confirm before anything reaches Stripe."""
    db, k, order = get_db(), current_kiosk(), _order_or_404(reference)
    returned, custom = _refund_choice(db, order, request.args)
    try:
        proposal = refunds.quote(db, order, returned, custom)
    except orders.LedgerError as exc:
        flash(words.say(exc), "error")
        return redirect(url_for("staff.order_detail", reference=order["reference"]))
    brand, last4 = refunds.paying_card(k, order)
    return render_template("staff/refund_review.html", order=order, quote=proposal, brand=brand, last4=last4,
                           amount_major=major(proposal.amount, order["currency"]), request_key=uuid.uuid4().hex)


@bp.post("/orders/<reference>/refund")
def refund(reference):
    """Make the refund staff confirmed (refunds.refund_order), and say what became of it."""
    db, k, order = get_db(), current_kiosk(), _order_or_404(reference)
    back = redirect(url_for("staff.order_detail", reference=order["reference"]))
    key = request.form.get("request", "")
    if not re.fullmatch(r"[0-9a-f]{32}", key) or request.form.get("mode") not in ("books", "custom"):
        abort(400)
    returned, custom = _refund_choice(db, order, request.form)
    outcome = refunds.refund_order(k, db, order, returned, key, custom=custom,
                                   expected=whole_number(request.form.get("expected"), 12),
                                   reason=request.form.get("reason", "")[:200].strip() or None)
    if outcome.kind == "unavailable":
        flash(_("Payments are not set up on this kiosk, so it cannot refund."), "error")
    elif outcome.kind == "already_recorded":
        flash(_("That refund was already made; it is listed below."), "info")
    elif outcome.kind == "changed":
        flash(words.say(outcome.error), "error")
        choice = {f"return-{isbn}": n for isbn, n in returned.items() if n}
        return redirect(url_for("staff.refund_review", reference=order["reference"], mode="books", **choice))
    elif outcome.kind == "invalid":
        flash(words.say(outcome.error), "error")
    elif outcome.kind == "refused":
        flash(_("Stripe did not make the refund, so nothing was recorded: %(why)s", why=words.say(outcome.error)),
              "error")
    elif outcome.kind == "held":
        flash(_("The refund is not confirmed yet: %(why)s It is held, not lost: press Refund again in a moment, "
                "or the next check with Stripe settles it.", why=words.say(outcome.error)), "error")
    elif outcome.books:
        flash(ngettext("Refunded %(amount)s; %(num)d book back on the shelf.",
                       "Refunded %(amount)s; %(num)d books back on the shelf.", outcome.books,
                       amount=k.money(outcome.amount)), "info")
    else:
        flash(_("Refunded %(amount)s.", amount=k.money(outcome.amount)), "info")
    return back
