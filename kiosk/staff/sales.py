"""Orders and refunds: the order list, one order, and refunding all or part of it through Stripe."""
import json
import re
import uuid

from flask import abort, flash, redirect, render_template, request, url_for

from .. import orders, refunds
from ..db import get_db
from ..money import to_minor
from ..payments import PaymentError
from ..state import current_kiosk
from ..views import whole_number
from .base import PAGE_SIZE, bp, log, major, page_number


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
                           today=orders.today().isoformat())


def _order_or_404(reference):
    order = orders.get(get_db(), reference=reference[:40])
    if order is None:
        abort(404)
    return order


@bp.get("/orders/<reference>")
def order_detail(reference):
    """One order: lines, refunds, stock movements, and the refund form."""
    db, order = get_db(), _order_or_404(reference)
    # Copies back on the shelf, or held for a refund Stripe has not confirmed yet, cannot be returned again.
    held = orders.held_or_returned(db, order["id"])
    lines = [{**dict(line), "returnable": line["quantity"] - held.get(line["isbn"], 0)}
             for line in orders.lines(db, order["id"])]
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    return render_template("staff/order.html", order=order, lines=lines, refunds=orders.refunds(db, order["id"]),
                           movements=orders.movements(db, order["id"]), left=left, left_major=major(left),
                           refundable=order["status"] in orders.REFUNDABLE and current_kiosk().gateway is not None,
                           request_key=uuid.uuid4().hex)


def _refund_request(db, order):
    """The amount and returned copies a refund form asks for; raises LedgerError or ValueError."""
    try:
        amount = to_minor(request.form.get("amount", ""), order["currency"])
    except ValueError:
        raise orders.LedgerError(f"Write the refund amount as a number in {order['currency']}, "
                                 f"like {major(order['amount'], order['currency'])}.") from None
    returned = {}
    for line in orders.lines(db, order["id"]):
        returned[line["isbn"]] = whole_number(request.form.get(f"return-{line['isbn']}"), 3, default=0)
    orders.check_refund(db, order, amount, returned)
    return amount, returned


@bp.post("/orders/<reference>/refund")
def refund(reference):
    """Refund all or part of an order through Stripe, then write it to the ledger (and stock, if returned).

    The refund is written as pending first (the schema refuses more than was paid, however many forms are
    submitted at once), then made at Stripe, then completed; a form sent again after a crash finds the
    refund at Stripe by its request key instead of making a second one."""
    db, k, order = get_db(), current_kiosk(), _order_or_404(reference)
    back = redirect(url_for("staff.order_detail", reference=order["reference"]))
    key = request.form.get("request", "")
    if not re.fullmatch(r"[0-9a-f]{32}", key):
        abort(400)
    if k.gateway is None:
        flash("Payments are not set up on this kiosk, so it cannot refund.", "error")
        return back
    held = orders.refund_recorded(db, key)
    if held is not None and held["status"] == "succeeded":
        flash("That refund was already made; it is listed below.", "info")
        return back
    fresh = held is None
    if fresh:
        try:
            amount, returned = _refund_request(db, order)
            refund_id = orders.reserve_refund(db, order["id"], amount=amount, returned=returned, request_key=key,
                                              reason=request.form.get("reason", "")[:200].strip() or None)
        except orders.LedgerError as exc:
            flash(str(exc), "error")
            return back
        held = orders.refund_by_id(db, refund_id)
    try:
        made = refunds.make(k, db, order, held, fresh)
    except PaymentError as exc:
        log.warning("refund of %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
        if isinstance(exc, refunds.Refused):
            orders.release_refund(db, held["id"])
            flash(f"Stripe did not make the refund, so nothing was recorded: {exc.message}", "error")
        else:
            # No answer, or Stripe could not be asked whether an earlier try made it: it may have. Released now,
            # a press of Refund would make a second one; held, the next check with Stripe settles it.
            flash(f"The refund is not confirmed yet: {exc.message} It is held, not lost: press Refund again in a "
                  "moment, or the next check with Stripe settles it.", "error")
        return back
    log.info("refunded %s of order %s (%s)", made.amount, order["reference"], made.id)
    books = sum(json.loads(held["returns"]).values())
    flash(f"Refunded {k.money(made.amount)}" + (f"; {books} {'book' if books == 1 else 'books'} back in stock."
                                                if books else "."), "info")
    return back
