"""Exporting the orders of a date range as CSV, for a spreadsheet, safely: sent as it is read (a year is hundreds of
megabytes), at most admin/exports.LIMIT exports at once in this kiosk, and saved into the data folder in the
background, its progress shown on the orders page."""
import csv
import re
import threading
import time
from datetime import UTC, date, datetime
from functools import cache

from flask import Response, current_app, flash, g, redirect, request, stream_with_context, url_for

from kiosk.admin.exports import LIMIT, Exports, made_aside, serving
from kiosk.core import stamps
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.ledger import exports
from kiosk.ledger.db import close_db, get_db
from kiosk.web import words
from kiosk.web.staff.base import bp, localtime_filter, or_404, shop_zone, today
from kiosk.web.state import current_kiosk

# Headed in the shop's words, as the day's CSV is: the export is read by people, in a spreadsheet.
CSV_COLUMNS = (_l("Reference"), _l("Created"), _l("Paid"), _l("Status"), _l("Amount"), _l("Refunded"), _l("Currency"),
               _l("Books"), _l("Items"), _l("Payment ID"), _l("Over-sold"), _l("Adopted"), _l("Note"), _l("Counter"),
               _l("Paid by"), _l("Gross"), _l("Discount"), _l("Promotions"))
CHUNK = 64 * 1024  # characters of CSV sent at a time
BREATHE = 200  # rows written between two moments left to other threads
WAY_EVERY = 16  # orders an export reads between two looks at whether requests are waiting (well under a millisecond)
QUICK = 2  # seconds a save is waited for before the orders page shows its progress instead of its outcome
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


AFTER_SEPARATOR = re.compile(r"([,;]\s*)(?=[=+\-@\t\r])")


def safe_cell(value):
    """A spreadsheet cell that is never read as a formula (OWASP CSV injection): = + - @ tab CR get a quote.

    Where Excel's list separator is ";" it splits this comma file on semicolons, and a quote in the middle
    of a cell means nothing to it: "Normal;=1+1" would start a cell with "=". So the same quote also goes
    after every comma or semicolon inside a cell, and every cell is quoted for the spreadsheets that do
    read quotes (csv_chunks)."""
    text = "" if value is None else str(value)
    if "," in text or ";" in text:  # most cells have neither: no pattern to run
        text = AFTER_SEPARATOR.sub(r"\1'", text)
    return "'" + text if text.startswith(FORMULA_START) else text


def saving_name(saving):
    """How a saving (an order_discounts row, or a day report's promotion) is named to staff: the promotion's name
    as sold, or "Staff discount"."""
    return saving["name"] or _("Staff discount")


def saving_label(saving):
    """A saving's name with its code, if it had one: "Book fair (FAIR10)"."""
    return f"{saving_name(saving)} ({saving['code']})" if saving["code"] else saving_name(saving)


ITEM = _l("%(title)s (%(isbn)s) x%(quantity)s: list %(list)s, discount %(discount)s, paid %(paid)s")


class _Written:
    """What csv.writer writes to: the text written since it was last taken, and its length."""

    def __init__(self, text=""):
        self.parts, self.size = [text], len(text)

    def write(self, text):
        self.parts.append(text)
        self.size += len(text)

    def take(self):
        """The text written so far, as UTF-8, and forgotten."""
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text.encode("utf-8")


def csv_chunks(rows):
    """CSV rows (sequences of cells) for a spreadsheet, every cell quoted, CRLF, in UTF-8 with a BOM (which makes
    Excel read UTF-8), as bytes about CHUNK at a time: the header at once, so a download starts before the rows
    are read, and never the whole file in memory."""
    out = _Written("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    for n, row in enumerate(rows):
        writer.writerow(row)
        if n == 0 or out.size >= CHUNK:
            yield out.take()
        if n % BREATHE == 0:
            time.sleep(0)  # lets a waiting thread take the GIL: a long export must not slow the shop's pages
    if out.size:
        yield out.take()


def csv_download(name, chunks):
    """A CSV file to download, its `chunks` sent as they are made, the request's context (its words) kept meanwhile."""
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


class _Cells:
    """What a year's export writes millions of times, each worked out once per export: a minute's local time, a
    status and a way to pay in words (amounts: stamps.major)."""

    amount = staticmethod(stamps.major)

    def __init__(self, zone):
        self.zone = zone
        self._minutes = {}
        self.status, self.paid_by = cache(words.status), cache(words.paid_by)

    def local(self, stamp):
        """localtime_filter(stamp): a ledger stamp as the shop's local time to the minute (every time zone's offset
        is whole minutes since long before 2000, so each minute is worked out once)."""
        if not stamp or len(stamp) != 19 or stamp[10] != " ":
            return localtime_filter(stamp)  # not a ledger stamp: whatever the filter makes of it
        found = self._minutes.get(stamp[:16])
        if found is None:
            if len(self._minutes) > 10_000:
                self._minutes.clear()
            found = self._minutes[stamp[:16]] = datetime.fromisoformat(stamp[:16]).replace(tzinfo=UTC) \
                .astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
        return found

    def item(self, line, currency, words_of_item):
        """One book line of an order for the Items cell: what it cost at its list price, its discount and what was
        paid, in `words_of_item` (ITEM in the page's language)."""
        amount = self.amount
        return words_of_item % {
            "title": line["title"], "isbn": line["isbn"], "quantity": line["quantity"],
            "list": amount(line["unit_price"] * line["quantity"], currency),
            "discount": amount(line["discount"], currency), "paid": amount(line["paid"], currency)}


def order_rows(orders, rates):
    """The export's header and a row per order of `orders` ((order, lines, taxes, savings), exports.orders_between):
    decimal amounts, each line with its list price, discount and what was paid, the order's list prices (gross),
    savings and promotions. With tax (`rates`, the (class, rate) pairs sold): the subtotal, the tax and the total of
    each order, and a column per rate as sold.

    Written a million times for a year, so what cannot hold a formula (amounts, times and counts: the ledger's
    CHECKs keep amounts at zero or more) is not run through safe_cell, and each order is read once as a dict."""
    label, cells, item = current_kiosk().settings.tax_label, _Cells(shop_zone()), str(ITEM)
    amount, local, status, paid_by, yes = cells.amount, cells.local, cells.status, cells.paid_by, _("yes")
    yield tuple(str(c) for c in CSV_COLUMNS) + ((_("Subtotal"), _("Tax"), _("Total")) if rates else ()) + \
        tuple(f"{label} {tax_class} {rate}%" for tax_class, rate in rates)
    names = None
    for row, lines, taxes, savings in orders:
        order = dict(zip(names or (names := row.keys()), row, strict=True))
        currency, total, subtotal, discount = order["currency"], order["amount"], order["subtotal"], order["discount"]
        tax_cells = [amount(subtotal or 0, currency), amount(order["tax"], currency), amount(total, currency)] \
            if rates else []
        by_rate = {(t["tax_class"], t["rate"]): t["tax"] for t in taxes}
        tax_cells += [amount(by_rate[key], currency) if key in by_rate else "" for key in rates]
        yield [
            safe_cell(order["reference"]), local(order["created_at"]), local(order["paid_at"]),
            safe_cell(status(order["status"])), amount(total, currency), amount(order["amount_refunded"], currency),
            safe_cell(currency), sum(line["quantity"] for line in lines),
            safe_cell("; ".join(cells.item(line, currency, item) for line in lines)),
            safe_cell(order["payment_intent"]), safe_cell(yes if order["oversold"] else ""),
            safe_cell(yes if order["adopted"] else ""), safe_cell(order["note"]), safe_cell(order["counter"]),
            safe_cell(paid_by(order["method"])),
            amount((total if subtotal is None else subtotal) + discount, currency), amount(discount, currency),
            safe_cell("; ".join(saving_label(s) for s in savings)), *tax_cells]


EXPORT_FIRST, EXPORT_LAST = date(2000, 1, 1), date(2099, 12, 31)
_made = threading.Lock()


def running():
    """This kiosk's exports (admin/exports.py): its places and its saves, made at the first export."""
    with _made:
        if "kiosk_exports" not in current_app.extensions:
            current_app.extensions["kiosk_exports"] = Exports()
        return current_app.extensions["kiosk_exports"]


def _date_range():
    """The export's first and last local day from the form, or a ValueError with what to fix."""
    try:
        first = date.fromisoformat((request.values.get("from") or today().isoformat())[:10])
        last = date.fromisoformat((request.values.get("to") or first.isoformat())[:10])
    except ValueError:
        raise ValueError(_("Give the dates as YYYY-MM-DD.")) from None
    if not (EXPORT_FIRST <= first <= EXPORT_LAST and EXPORT_FIRST <= last <= EXPORT_LAST):
        raise ValueError(_("Choose dates between %(first)s and %(last)s.", first=EXPORT_FIRST.isoformat(),
                           last=EXPORT_LAST.isoformat()))
    if last < first:
        raise ValueError(_("The end date is before the start date."))
    return first, last


def _begin(counted=False):
    """What an export needs before its first byte: (first day, last day, its Slot, the tax columns, and when
    `counted` its number of orders); a ValueError says why it cannot start (the range, or LIMIT exports running
    already). The caller releases the Slot."""
    first, last = _date_range()
    slot = running().slot()
    if slot is None:
        raise ValueError(_("An export is already running: this kiosk makes at most %(num)d at a time. Try again when "
                           "one has finished.", num=LIMIT))
    try:
        db, zone = get_db(), shop_zone()
        return (first, last, slot, exports.rates_between(db, first, last, zone),
                exports.count_between(db, first, last, zone) if counted else None)
    except BaseException:
        slot.release()
        raise


def _file_name(first, last):
    return f"orders-{first.isoformat()}-to-{last.isoformat()}.csv"


def _making_way(orders):
    """`orders`, the thread reading them stopping while this kiosk answers requests (admin/exports.Serving)."""
    make_way = serving.make_way
    for n, order in enumerate(orders):
        if not n % WAY_EVERY:
            make_way()
        yield order


@bp.before_app_request
def _answering():
    """Count every request but an export's own (a save's waits for it), for exports to make way for."""
    if request.endpoint not in ("staff.export_csv", "staff.export_save"):
        serving.begin()
        g.export_made_way = True


@bp.teardown_app_request
def _answered(exc=None):
    """That request has been answered."""
    if g.pop("export_made_way", False):
        serving.end()


def _rows_in_app(app, ledger, first, last, zone, rates, counted=iter):
    """The export's CSV chunks, made in a thread of its own (made_aside, or a save's): in `app`'s context for its
    words and the shop's settings, each order passed through `counted` as it is read, making way for requests."""
    with app.app_context():
        orders = counted(_making_way(exports.orders_between(ledger, first, last, zone)))
        yield from csv_chunks(order_rows(orders, rates))


def _holding(slot, chunks):
    """`chunks`, releasing `slot` once they end or the download is closed half-way (the client went away)."""
    try:
        yield from chunks
    finally:
        slot.release()


@bp.get("/export.csv")
def export_csv():
    """Download the orders of a date range as CSV, sent as it is read."""
    try:
        first, last, slot, rates, _ = _begin()
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.order_list"))
    close_db()  # the rows come on a connection of their own, held only while they are sent
    rows = _rows_in_app(current_app._get_current_object(), current_kiosk().ledger, first, last, shop_zone(), rates)
    response = csv_download(_file_name(first, last), _holding(slot, made_aside(lambda: rows)))
    response.call_on_close(slot.release)  # also when the download was never started
    return response


def _said(save):
    """What staff are told of a save (admin/exports.Save): (words, flash category)."""
    if save.state == "running":
        return _("Saving %(file)s: %(percent)d%%", file=save.path.name, percent=save.percent), "info"
    if save.state == "done":
        return _("Saved %(file)s.", file=str(save.path)), "info"
    kind, why = save.error
    if kind == "folder":
        return _("Could not save the export in %(folder)s: %(why)s.", folder=str(save.path.parent), why=why), "error"
    return _("Could not save the export: %(why)s", why=why), "error"


@bp.post("/export")
def export_save():
    """Save the CSV into the kiosk's data folder, for windows that cannot download files, in the background: a short
    range is saved before the page comes back; a long one shows its progress on the orders page."""
    try:
        first, last, slot, rates, total = _begin(counted=True)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.order_list"))
    app, ledger, zone = current_app._get_current_object(), current_kiosk().ledger, shop_zone()
    save = running().save(current_kiosk().settings.data_dir / "exports" / _file_name(first, last), total,
                          lambda job: _rows_in_app(app, ledger, first, last, zone, rates, job.counted), slot)
    if not save.wait(QUICK):
        return redirect(url_for("staff.order_list", export=save.id))
    flash(*_said(save))
    return redirect(url_for("staff.order_list"))


@bp.get("/export/<job_id>")
def export_progress(job_id):
    """How a save goes, for the orders page: its state ("running", "done", "failed"), percent and words."""
    save = or_404(running().find(job_id[:40]))
    message, kind = _said(save)
    return {"state": save.state, "percent": save.percent, "message": message, "kind": kind}


@bp.app_template_global()
def export_saving(job_id):
    """The save the orders page was sent to with ?export=, as the page shows it, or None."""
    save = running().find(job_id[:40]) if job_id else None
    if save is None:
        return None
    message, kind = _said(save)
    return {"url": url_for("staff.export_progress", job_id=save.id), "state": save.state, "message": message,
            "kind": kind}
