"""Orders and refunds: the order list, one order, and refunding all or part of it through Stripe."""
import re
import uuid

from flask import abort, flash, redirect, render_template, request, url_for

from kiosk.admin import refunds
from kiosk.core import stamps
from kiosk.core.money import to_minor
from kiosk.ledger import orders
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import get_db
from kiosk.web.staff.base import PAGE_SIZE, bp, major, or_404, page_number
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number


@bp.get("/orders")
def order_list():
    """Orders, newest first, searchable by reference, ISBN or pi_ id."""
    query = request.args.get("q", "")[:100].strip()
    status = request.args.get("status", "")
    oversold = request.args.get("oversold") == "1"
    page = page_number()
    rows, total = orders.find_orders(get_db(), query, status, oversold, page, PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("staff/orders.html", rows=rows, total=total, page=min(page, pages), pages=pages,
                           query=query, status=status, oversold=oversold, statuses=orders.STATUSES,
                           today=stamps.today().isoformat())


def _order_or_404(reference):
    return or_404(orders.get(get_db(), reference=reference[:40]))


@bp.get("/orders/<reference>")
def order_detail(reference):
    """One order: lines, refunds, stock movements, and the refund form."""
    db, order = get_db(), _order_or_404(reference)
    # Copies back on the shelf, or held for a refund Stripe has not confirmed yet, cannot be returned again.
    held = refund_ledger.held_or_returned(db, order["id"])
    lines = [{**dict(line), "returnable": line["quantity"] - held.get(line["isbn"], 0)}
             for line in orders.lines(db, order["id"])]
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    return render_template("staff/order.html", order=order, lines=lines, refunds=refund_ledger.refunds(db, order["id"]),
                           movements=shelves.movements(db, order["id"]), left=left, left_major=major(left),
                           refundable=order["status"] in orders.REFUNDABLE and current_kiosk().gateway is not None,
                           request_key=uuid.uuid4().hex)


def _refund_form(db, order):
    """The amount (None when not a number) and returned copies a refund form asks for."""
    try:
        amount = to_minor(request.form.get("amount", ""), order["currency"])
    except ValueError:
        amount = None  # the refund service says so, unless this request's refund is held already
    returned = {line["isbn"]: whole_number(request.form.get(f"return-{line['isbn']}"), 3, default=0)
                for line in orders.lines(db, order["id"])}
    return amount, returned


@bp.post("/orders/<reference>/refund")
def refund(reference):
    """Refund all or part of an order through Stripe (refunds.refund_order), and say what became of it."""
    db, k, order = get_db(), current_kiosk(), _order_or_404(reference)
    back = redirect(url_for("staff.order_detail", reference=order["reference"]))
    key = request.form.get("request", "")
    if not re.fullmatch(r"[0-9a-f]{32}", key):
        abort(400)
    amount, returned = _refund_form(db, order)
    outcome = refunds.refund_order(k, db, order, amount, returned, key,
                                   reason=request.form.get("reason", "")[:200].strip() or None)
    if outcome.kind == "unavailable":
        flash("Payments are not set up on this kiosk, so it cannot refund.", "error")
    elif outcome.kind == "already_recorded":
        flash("That refund was already made; it is listed below.", "info")
    elif outcome.kind == "invalid":
        flash(outcome.message, "error")
    elif outcome.kind == "refused":
        flash(f"Stripe did not make the refund, so nothing was recorded: {outcome.error.message}", "error")
    elif outcome.kind == "held":
        flash(f"The refund is not confirmed yet: {outcome.error.message} It is held, not lost: press Refund again "
              "in a moment, or the next check with Stripe settles it.", "error")
    else:
        books = outcome.books
        flash(f"Refunded {k.money(outcome.amount)}" + (f"; {books} {'book' if books == 1 else 'books'} back in stock."
                                                       if books else "."), "info")
    return back
