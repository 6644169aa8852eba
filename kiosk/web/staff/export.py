"""Exporting the orders of a date range as CSV, for a spreadsheet, safely."""
import csv
import io
import re
from datetime import date

from flask import Response, flash, redirect, request, url_for

from kiosk.core.datadir import make_private, write_private
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.ledger import reports
from kiosk.ledger.db import get_db
from kiosk.web import words
from kiosk.web.staff.base import bp, localtime_filter, major, shop_zone, today
from kiosk.web.state import current_kiosk

# Headed in the shop's words, as the day's CSV is: the export is read by people, in a spreadsheet.
CSV_COLUMNS = (_l("Reference"), _l("Created"), _l("Paid"), _l("Status"), _l("Amount"), _l("Refunded"), _l("Currency"),
               _l("Books"), _l("Items"), _l("Payment ID"), _l("Over-sold"), _l("Adopted"), _l("Note"), _l("Counter"),
               _l("Paid by"), _l("Gross"), _l("Discount"), _l("Promotions"))
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


def saving_name(saving):
    """How a saving (an order_discounts row, or a day report's promotion) is named to staff: the promotion's name
    as sold, or "Staff discount"."""
    return saving["name"] or _("Staff discount")


def saving_label(saving):
    """A saving's name with its code, if it had one: "Book fair (FAIR10)"."""
    return f"{saving_name(saving)} ({saving['code']})" if saving["code"] else saving_name(saving)


def _item(line, currency):
    """One book line of an order for the Items cell: what it cost at its list price, its discount and what was paid."""
    return _("%(title)s (%(isbn)s) x%(quantity)s: list %(list)s, discount %(discount)s, paid %(paid)s",
             title=line["title"], isbn=line["isbn"], quantity=line["quantity"],
             list=major(line["unit_price"] * line["quantity"], currency), discount=major(line["discount"], currency),
             paid=major(line["paid"], currency))


def orders_csv(rows, taxes=None, savings=None):
    """Orders as CSV text for a spreadsheet: UTF-8 with a BOM, decimal amounts, one order per row, each line with
    its list price, discount and what was paid, the order's list prices (gross), savings and promotions.

    With tax: the subtotal, the tax and the total of each order, and a column per rate as sold."""
    taxes, savings = taxes or {}, savings or {}
    rates = sorted({(t["tax_class"], t["rate"]) for found in taxes.values() for t in found})
    label = current_kiosk().settings.tax_label
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(tuple(str(c) for c in CSV_COLUMNS) + ((_("Subtotal"), _("Tax"), _("Total")) if rates else ()) +
                    tuple(f"{label} {tax_class} {rate}%" for tax_class, rate in rates))
    for order, lines in rows:
        by_rate = {(t["tax_class"], t["rate"]): t["tax"] for t in taxes.get(order["id"], [])}
        tax_cells = [major(order["subtotal"] or 0, order["currency"]), major(order["tax"], order["currency"]),
                     major(order["amount"], order["currency"])] if rates else []
        tax_cells += [major(by_rate[key], order["currency"]) if key in by_rate else "" for key in rates]
        items = "; ".join(_item(line, order["currency"]) for line in lines)
        gross = (order["amount"] if order["subtotal"] is None else order["subtotal"]) + order["discount"]
        writer.writerow([safe_cell(v) for v in (
            order["reference"], localtime_filter(order["created_at"]), localtime_filter(order["paid_at"]),
            words.status(order["status"]), major(order["amount"], order["currency"]),
            major(order["amount_refunded"], order["currency"]), order["currency"],
            sum(line["quantity"] for line in lines), items, order["payment_intent"] or "",
            _("yes") if order["oversold"] else "", _("yes") if order["adopted"] else "", order["note"] or "",
            order["counter"] or "", words.paid_by(order["method"]), major(gross, order["currency"]),
            major(order["discount"], order["currency"]),
            "; ".join(saving_label(s) for s in savings.get(order["id"], [])), *tax_cells)])
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8


EXPORT_FIRST, EXPORT_LAST = date(2000, 1, 1), date(2099, 12, 31)


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


def _export():
    """The CSV's file name and bytes for the form's date range; a ValueError says what to fix."""
    first, last = _date_range()
    db, zone = get_db(), shop_zone()
    body = orders_csv(reports.orders_between(db, first, last, zone), reports.taxes_between(db, first, last, zone),
                      reports.savings_between(db, first, last, zone))
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
    folder = current_kiosk().settings.data_dir / "exports"
    try:
        name, body = _export()
        make_private(folder)
        write_private(folder / name, body)
    except ValueError as exc:
        flash(str(exc), "error")
    except OSError as exc:
        flash(_("Could not save the export in %(folder)s: %(why)s.", folder=str(folder), why=exc.strerror), "error")
    else:
        flash(_("Saved %(file)s.", file=str(folder / name)), "info")
    return redirect(url_for("staff.order_list"))
