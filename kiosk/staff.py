"""The staff area behind KIOSK_STAFF_PIN: the day's takings, orders, refunds, stock, export, catalog and exit."""
import csv
import hmac
import io
import json
import logging
import re
import time
import uuid
from datetime import date, datetime, timezone

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for

from . import charts, kiosk, orders
from .catalog import CatalogError, load_catalog
from .datadir import make_private, write_private
from .db import get_db, get_meta, set_meta, transaction
from .money import to_minor
from .payments import PaymentError
from .reconcile import LAST_RESULT, LAST_SWEEP
from .sessions import SessionEnded, store
from .views import whole_number

bp = Blueprint("staff", __name__, url_prefix="/staff")
log = logging.getLogger("kiosk.staff")

MAX_TRIES = 5
LOCK_SECONDS = 5 * 60
IDLE_SECONDS = 5 * 60
MIN_PIN = 4
PAGE_SIZE = 25
OPEN_ENDPOINTS = ("staff.index", "staff.login", "staff.lock")
clock = time.time  # tests move time forward by replacing this


def pin_problem():
    """Why the staff area cannot open (no PIN, or one too short to protect refunds), or None."""
    pin = kiosk().settings.staff_pin
    if not pin:
        return "No staff PIN is set, so the staff area stays locked."
    if len(pin) < MIN_PIN:
        return f"The staff PIN is shorter than {MIN_PIN} characters, so the staff area stays locked."
    return None


def signed_in():
    """True while this session holds a staff sign-in used within the last 5 minutes."""
    if not session.stored:
        return False
    state = store().staff_touch(session.key, clock(), IDLE_SECONDS)
    if state == "expired":
        flash("The staff area locked itself after 5 minutes without use.", "info")
    return state == "in"


@bp.before_app_request
def leave_staff_area():
    """Going back to the shop ends the staff session, so a customer cannot walk in behind staff."""
    if session.stored and request.blueprint != "staff" and request.endpoint not in (None, "static") \
            and store().staff_signed_in(session.key):  # a read first: a shop page writes nothing
        store().staff_sign_out(session.key)


@bp.before_request
def guard():
    """Every staff page but the sign-in needs a PIN set and a live staff session."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    if not signed_in():
        if request.method == "GET":
            return redirect(url_for("staff.index"))
        abort(403)
    return None


@bp.context_processor
def staff_context():
    """Whether the staff header shows its menu and idle lock."""
    return {"signed_in": session.stored and store().staff_signed_in(session.key)}


@bp.app_template_filter("localtime")
def localtime_filter(stamp):
    """A ledger timestamp (UTC) as the kiosk's local time."""
    if not stamp:
        return ""
    moment = datetime.strptime(stamp, orders.STAMP).replace(tzinfo=timezone.utc).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def _lockout(db, now):
    """Seconds the PIN stays locked, and wrong tries so far."""
    until = float(get_meta(db, "staff_locked_until", 0))
    # Capped, so a clock set back cannot lock staff out for longer than one lock.
    return min(LOCK_SECONDS, max(0, until - now)), int(get_meta(db, "staff_pin_failures", 0))


def check_pin(db, pin):
    """Compare a PIN in constant time, counting wrong tries in the ledger; returns (ok, message, locked)."""
    now = clock()
    with transaction(db):  # one try at a time, even from two windows
        locked, failures = _lockout(db, now)
        if locked:
            return False, f"Too many wrong PINs. Try again in {-(-int(locked) // 60)} minutes.", True
        if hmac.compare_digest(pin.encode(), kiosk().settings.staff_pin.encode()):
            set_meta(db, "staff_pin_failures", 0)
            return True, "", False
        failures += 1
        if failures >= MAX_TRIES:
            set_meta(db, "staff_locked_until", now + LOCK_SECONDS)
            set_meta(db, "staff_pin_failures", 0)
            log.warning("staff PIN: %s wrong tries, locked for %s s", MAX_TRIES, LOCK_SECONDS)
            return False, f"Too many wrong PINs. The staff area is locked for {LOCK_SECONDS // 60} minutes.", True
        set_meta(db, "staff_pin_failures", failures)
        left = MAX_TRIES - failures
        return False, f"Wrong PIN. {left} {'try' if left == 1 else 'tries'} left before a 5-minute lock.", False


@bp.get("/")
def index():
    """The sign-in, or today's takings for signed-in staff."""
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    if not signed_in():
        return render_template("staff/login.html")
    return dashboard()


@bp.post("/login")
def login():
    """Check the PIN; five wrong tries lock the staff area for five minutes."""
    if pin_problem():
        return render_template("staff/no_pin.html", problem=pin_problem()), 403
    ok, message, locked = check_pin(get_db(), request.form.get("pin", "")[:64])
    if not ok:
        flash(message, "error")
        return render_template("staff/login.html"), 429 if locked else 401
    # A fresh session id on sign-in, keeping the rest (the cart): nobody can plant a staff session.
    try:
        store().rotate(session)
        with store().writing(session) as sdb:
            sdb.execute("INSERT OR REPLACE INTO staff_signins (session, since, seen) VALUES (?, ?, ?)",
                        (session.key, clock(), clock()))
    except SessionEnded:
        abort(403)
    log.info("staff signed in")
    return redirect(url_for("staff.index"))


@bp.post("/lock")
def lock():
    """End the staff session and go back to the shop."""
    if session.stored:
        store().staff_sign_out(session.key)
    return redirect(url_for("shop.home"))


def dashboard():
    """Today's takings, charts by hour and by day, and what needs attention."""
    db, k = get_db(), kiosk()
    day = orders.today()
    hours = orders.sales_by_hour(db, day)
    days = orders.sales_by_day(db, day, 14)
    by_hour = charts.bar_chart([(f"{h:02d}:00", amount, f", {n} orders") for h, amount, n in hours],
                               title=f"Sales by hour on {day.isoformat()}", fmt=k.money, chart_id="chart-hours",
                               label_every=3)
    by_day = charts.bar_chart([(d.strftime("%d %b"), amount, f", {n} orders") for d, amount, n in days],
                              title="Sales by day, last 14 days", fmt=k.money, chart_id="chart-days", label_every=2,
                              label_last=True)
    counts = {row["status"]: row["n"] for row in
              db.execute("SELECT status, COUNT(*) AS n FROM orders WHERE status IN ('pending', 'failed') "
                         "GROUP BY status")}
    oversold = db.execute("SELECT COUNT(*) FROM orders WHERE oversold = 1").fetchone()[0]
    return render_template("staff/dashboard.html", day=day, takings=orders.takings(db, day), hours=hours, days=days,
                           by_hour=by_hour, by_day=by_day, counts=counts, oversold=oversold,
                           last_sweep=get_meta(db, LAST_SWEEP), last_result=get_meta(db, LAST_RESULT),
                           warnings=len(k.catalog.warnings), setup_problems=k.settings.problems)


def _page():
    return whole_number(request.args.get("page"), 5, default=1)


@bp.get("/orders")
def order_list():
    """Orders, newest first, searchable by reference, ISBN or pi_ id."""
    query = request.args.get("q", "")[:100].strip()
    status = request.args.get("status", "")
    oversold = request.args.get("oversold") == "1"
    page = _page()
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
    held = {r["isbn"]: r["returned"] for r in
            db.execute("SELECT isbn, returned FROM order_lines WHERE order_id = ?", (order["id"],))}
    lines = [{**dict(line), "returnable": line["quantity"] - held.get(line["isbn"], 0)}
             for line in orders.lines(db, order["id"])]
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    return render_template("staff/order.html", order=order, lines=lines, refunds=orders.refunds(db, order["id"]),
                           movements=orders.movements(db, order["id"]), left=left, left_major=major(left),
                           refundable=order["status"] in orders.REFUNDABLE and kiosk().gateway is not None,
                           request_key=uuid.uuid4().hex)


def major(minor, currency=None):
    """Minor units as a plain decimal in major units, in the shop currency unless told."""
    return orders.major(minor, currency or kiosk().settings.currency)


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
    db, k, order = get_db(), kiosk(), _order_or_404(reference)
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
        held = db.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
    try:
        made = make_refund(k, db, order, held, fresh)
    except PaymentError as exc:
        log.warning("refund of %s failed: %s (%s)", order["reference"], exc.kind, exc.status)
        if exc.status is None and exc.retryable:
            # No answer at all: Stripe may have made it. The next check with Stripe settles it either way.
            flash(f"Stripe did not answer, so the refund is not confirmed: {exc.message} It is held, not lost: "
                  "press Refund again, or the next check with Stripe settles it.", "error")
        else:
            orders.release_refund(db, held["id"])
            flash(f"Stripe did not make the refund, so nothing was recorded: {exc.message}", "error")
        return back
    log.info("refunded %s of order %s (%s)", made.amount, order["reference"], made.id)
    books = sum(json.loads(held["returns"]).values())
    flash(f"Refunded {k.money(made.amount)}" + (f"; {books} {'book' if books == 1 else 'books'} back in stock."
                                                if books else "."), "info")
    return back


def make_refund(k, db, order, held, fresh):
    """Make a pending refund at Stripe (or find it there) and complete it in the ledger; raises PaymentError.

    A form sent again after a crash or a timeout first looks for its refund at Stripe (by the request key in
    the refund's metadata), so it never refunds twice. Stripe replays a 5xx for the same Idempotency-Key, so
    after one it looks too, and each reservation has its own key."""
    made = None if fresh else k.gateway.find_refund(order["payment_intent"], held["request_key"])
    if made is None:
        try:
            made = k.gateway.refund(order["payment_intent"], held["amount"],
                                    idempotency_key=f"{k.kiosk_id}-refund-{held['request_key']}-{held['id']}",
                                    metadata={"kiosk_id": k.kiosk_id, "order_ref": order["reference"],
                                              "request_key": held["request_key"]})
        except PaymentError as exc:
            if exc.status is None or exc.status < 500:
                raise
            made = k.gateway.find_refund(order["payment_intent"], held["request_key"])
            if made is None:
                raise
    if not made.made:
        raise PaymentError(f"Stripe reports the refund as {made.status}.", "refund_failed", False)
    orders.complete_refund(db, held["id"], stripe_refund=made.id, amount=made.amount)
    return made


@bp.get("/stock")
def stock():
    """Copies on hand per book, with a count form."""
    catalog = kiosk().catalog
    query = request.args.get("q", "")[:100].strip()
    page = _page()
    if query:
        books, pages = catalog.search(query, limit=PAGE_SIZE), 1
    else:
        books, pages = catalog.page(page, size=PAGE_SIZE)
    levels = orders.stock_list(get_db(), [b.isbn13 for b in books])
    return render_template("staff/stock.html", books=books, levels=levels, query=query, page=min(page, pages),
                           pages=pages)


@bp.post("/stock")
def adjust_stock():
    """Set a book's copies on hand after counting the shelf, with a reason."""
    book = kiosk().catalog.get(request.form.get("isbn", ""))
    count = whole_number(request.form.get("count", "").strip(), 6)
    query = request.form.get("q", "")[:100]
    if book is None:
        abort(404)
    if count is None:
        flash("Write the number of copies on the shelf as a whole number.", "error")
        return redirect(url_for("staff.stock", q=query))
    try:
        delta = orders.adjust_stock(get_db(), book.isbn13, count, request.form.get("note", ""))
    except orders.LedgerError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.stock", q=query))
    flash(f"“{book.title}”: {count} on hand ({delta:+d})." if delta else f"“{book.title}”: no change.", "info")
    return redirect(url_for("staff.stock", q=query))


CSV_COLUMNS = ("Reference", "Created", "Paid", "Status", "Amount", "Refunded", "Currency", "Books", "Items",
               "Payment ID", "Over-sold", "Adopted", "Note")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


AFTER_SEPARATOR = re.compile(r"([,;]\s*)(?=[=+\-@\t\r])")


def safe_cell(value):
    """A spreadsheet cell that is never read as a formula (OWASP CSV injection): = + - @ tab CR get a quote.

    Where Excel's list separator is ";" it splits this comma file on semicolons, and a quote in the middle
    of a cell means nothing to it: "Normal;=1+1" would start a cell with "=". So the same quote also goes
    after every comma or semicolon inside a cell, and every cell is quoted for the spreadsheets that do
    read quotes (orders_csv)."""
    text = AFTER_SEPARATOR.sub(r"\1'", "" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


def orders_csv(rows):
    """Orders as CSV text for a spreadsheet: UTF-8 with a BOM, decimal amounts, one order per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for order, lines in rows:
        items = "; ".join(f"{line['title']} ({line['isbn']}) x{line['quantity']}" for line in lines)
        writer.writerow([safe_cell(v) for v in (
            order["reference"], localtime_filter(order["created_at"]), localtime_filter(order["paid_at"]),
            order["status"], major(order["amount"], order["currency"]),
            major(order["amount_refunded"], order["currency"]), order["currency"],
            sum(line["quantity"] for line in lines), items, order["payment_intent"] or "",
            "yes" if order["oversold"] else "", "yes" if order["adopted"] else "", order["note"] or "")])
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8


EXPORT_FIRST, EXPORT_LAST = date(2000, 1, 1), date(2099, 12, 31)


def _date_range():
    """The export's first and last local day from the form, or a ValueError with what to fix."""
    today = orders.today()
    try:
        first = date.fromisoformat((request.values.get("from") or today.isoformat())[:10])
        last = date.fromisoformat((request.values.get("to") or first.isoformat())[:10])
    except ValueError:
        raise ValueError("Give the dates as YYYY-MM-DD.") from None
    if not (EXPORT_FIRST <= first <= EXPORT_LAST and EXPORT_FIRST <= last <= EXPORT_LAST):
        raise ValueError(f"Choose dates between {EXPORT_FIRST.isoformat()} and {EXPORT_LAST.isoformat()}.")
    if last < first:
        raise ValueError("The end date is before the start date.")
    return first, last


def _export():
    """The CSV's file name and bytes for the form's date range; a ValueError says what to fix."""
    first, last = _date_range()
    body = orders_csv(orders.orders_between(get_db(), first, last))
    return f"orders-{first.isoformat()}-to-{last.isoformat()}.csv", body.encode("utf-8")


@bp.get("/export.csv")
def export_csv():
    """Download the orders of a date range as CSV."""
    try:
        name, body = _export()
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.order_list"))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/export")
def export_save():
    """Save the CSV into the kiosk's data folder, for windows that cannot download files."""
    folder = kiosk().settings.data_dir / "exports"
    try:
        name, body = _export()
        make_private(folder)
        write_private(folder / name, body)
    except ValueError as exc:
        flash(str(exc), "error")
    except OSError as exc:
        flash(f"Could not save the export in {folder}: {exc.strerror}.", "error")
    else:
        flash(f"Saved {folder / name}.", "info")
    return redirect(url_for("staff.order_list"))


@bp.get("/catalog")
def catalog_page():
    """The catalog file, its load warnings, and the reload button."""
    return render_template("staff/catalog.html", catalog=kiosk().catalog)


@bp.post("/catalog/reload")
def catalog_reload():
    """Read the catalog file again; a file with no valid rows leaves the current catalog in place."""
    k = kiosk()
    try:
        fresh = load_catalog(k.settings.catalog_path, k.settings.currency)
    except CatalogError as exc:
        flash(f"The catalog was not reloaded, and the kiosk keeps selling the {len(k.catalog.books)} books it had. "
              f"{exc}", "error")
        return redirect(url_for("staff.catalog_page"))
    orders.sync_stock(get_db(), fresh.books)
    k.catalog = fresh
    for warning in fresh.warnings:
        log.warning("catalog: %s", warning)
    flash(f"Catalog reloaded: {len(fresh.books)} books, {len(fresh.warnings)} warnings.", "info")
    return redirect(url_for("staff.catalog_page"))


@bp.post("/reconcile")
def reconcile_now():
    """Ask Stripe now instead of waiting for the next sweep."""
    reconciler = getattr(kiosk(), "reconciler", None)
    if reconciler is None:
        flash("Payments are not set up on this kiosk, so there is nothing to check.", "error")
    else:
        report = reconciler.run_once()
        flash(f"Checked with Stripe: {report}." if report is not None else
              f"Could not check with Stripe: {get_meta(get_db(), LAST_RESULT)}", "info" if report else "error")
    return redirect(url_for("staff.index"))


@bp.get("/exit")
def exit_confirm():
    """Ask before closing the kiosk."""
    return render_template("staff/exit.html", closing=None)


@bp.post("/exit")
def exit_kiosk():
    """Close the kiosk window; headless, say there is none."""
    store().staff_sign_out(session.key)
    closing = kiosk().request_exit()
    log.info("staff asked the kiosk to exit (%s)", "closing the window" if closing else "headless: no window")
    return render_template("staff/exit.html", closing=closing)
