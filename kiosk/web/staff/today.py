"""Today: the takings, charts by hour and by day, and what needs attention."""
from flask import render_template
from flask_babel import format_date

from kiosk.core import charts, stamps
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.ledger import orders, reports
from kiosk.ledger.db import get_db
from kiosk.payments.reconcile import last_check
from kiosk.web import words
from kiosk.web.staff.base import shop_zone
from kiosk.web.state import current_kiosk


def _orders(n):
    """A bar's note: how many orders made its sum."""
    return ngettext(", %(num)d order", ", %(num)d orders", n)


def dashboard():
    """Today's takings, charts by hour and by day, and what needs attention."""
    db, k = get_db(), current_kiosk()
    zone = shop_zone()
    day = stamps.today(zone)
    hours = reports.sales_by_hour(db, day, zone)
    days = reports.sales_by_day(db, day, 14, zone)
    by_hour = charts.bar_chart([(f"{h:02d}:00", amount, _orders(n)) for h, amount, n in hours],
                               title=_("Sales by hour on %(day)s", day=day.isoformat()), fmt=k.money,
                               chart_id="chart-hours", label_every=3)
    by_day = charts.bar_chart([(format_date(d, "d MMM"), amount, _orders(n)) for d, amount, n in days],
                              title=_("Sales by day, last 14 days"), fmt=k.money, chart_id="chart-days", label_every=2,
                              label_last=True)
    counts, oversold = orders.attention(db)
    last_sweep, last_result = last_check(db, k)
    # Close the day's figures hold today's takings, per counter and with their tax: one report, read once.
    report = reports.day_report(db, day, zone=zone)
    return render_template("staff/dashboard.html", day=day, takings=report["total"], hours=hours, days=days,
                           by_counter=report["counters"], counter=k.settings.counter_name,
                           charges_tax=bool(k.settings.tax_rates),
                           by_hour=by_hour, by_day=by_day, counts=counts, oversold=oversold,
                           last_sweep=last_sweep, last_result=words.sweep(last_result),
                           warnings=len(k.catalog.warnings), setup_problems=k.settings.problems)
