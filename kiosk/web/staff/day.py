"""Closing the day: the day's gross sales, discounts, sales, refunds, net and tax per rate, per counter and per
promotion, on screen, on the roll, as CSV."""
from datetime import date

from flask import flash, redirect, render_template, request, url_for

from kiosk.core import stamps
from kiosk.core.i18n import gettext as _
from kiosk.ledger import reports
from kiosk.ledger.db import get_db
from kiosk.web.staff.base import bp, localtime_filter, major, shop_zone, today
from kiosk.web.staff.export import EXPORT_FIRST, EXPORT_LAST, csv_chunks, csv_download, safe_cell, saving_name
from kiosk.web.state import current_kiosk


def _day():
    """The report's day from ?date=, today when missing; a ValueError says what to fix."""
    raw = request.args.get("date", "")[:10] or today().isoformat()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(_("Give the day as YYYY-MM-DD.")) from None
    if not EXPORT_FIRST <= day <= EXPORT_LAST:
        raise ValueError(_("Choose a day between %(first)s and %(last)s.", first=EXPORT_FIRST.isoformat(),
                           last=EXPORT_LAST.isoformat()))
    return day


def _asked_day():
    """The day asked for (?date=, today unless given), or None after saying why it cannot be shown."""
    try:
        return _day()
    except ValueError as exc:
        flash(str(exc), "error")  # worded by _day() itself
        return None


@bp.get("/day")
def day_report():
    """The day's report, for any day (today unless asked); printable on the 80 mm receipt roll."""
    day = _asked_day()
    if day is None:
        return redirect(url_for("staff.day_report"))
    zone = shop_zone()
    return render_template("staff/day.html", day=day, report=reports.day_report(get_db(), day, zone=zone),
                           tax_label=current_kiosk().settings.tax_label, zone=zone.key,
                           hours=stamps.day_hours(day, zone))


def _day_rows(day, report):
    """The day's report as CSV rows: the shop and each counter, then each tax rate, then each promotion."""
    currency, label = current_kiosk().settings.currency, current_kiosk().settings.tax_label
    # Headed in the shop's words: the day's report is read by people, in a spreadsheet.
    yield (_("Day"), _("Counter"), _("Orders"), _("Books"), _("Gross"), _("Discounts"), _("Sales"), _("Refunds"),
           _("Net"), _("Tax"), _("Tax refunded"), _("Net tax"), _("Net without tax"), _("First sale"),
           _("Last sale"), _("Currency"))
    for name, t in [(_("All counters"), report["total"]), *report["counters"]]:
        yield [safe_cell(v) for v in (
            day.isoformat(), name or "—", t["orders"], t["books"], major(t["gross"]), major(t["discounts"]),
            major(t["sales"]), major(t["refunds"]), major(t["net"]), major(t["tax"]), major(t["tax_refunded"]),
            major(t["net_tax"]), major(t["net_ex_tax"]), localtime_filter(t["first"]), localtime_filter(t["last"]),
            currency)]
    if report["rates"]:
        yield ()
        yield (_("Day"), _("Tax"), _("Class"), _("Rate %"), _("Charged on"), _("Tax"), _("Tax refunded"),
               _("Net tax"), _("Currency"))
        for tax_class, rate, r in report["rates"]:
            yield [safe_cell(v) for v in (
                day.isoformat(), label, tax_class, rate, major(r["taxable"]), major(r["tax"]),
                major(r["tax_refunded"]), major(r["net_tax"]), currency)]
    if report["promotions"]:
        yield ()
        yield (_("Day"), _("Promotion"), _("Code"), _("Orders"), _("Discount"), _("Currency"))
        for p in report["promotions"]:
            yield [safe_cell(v) for v in (
                day.isoformat(), saving_name(p), p["code"], p["orders"], major(p["amount"]), currency)]


@bp.get("/day.csv")
def day_csv():
    """The day's report as CSV: a row for the shop, one per counter, one per tax rate, one per promotion."""
    day = _asked_day()
    if day is None:
        return redirect(url_for("staff.day_report"))
    report = reports.day_report(get_db(), day, zone=shop_zone())
    return csv_download(f"day-{day.isoformat()}.csv", csv_chunks(_day_rows(day, report)))
