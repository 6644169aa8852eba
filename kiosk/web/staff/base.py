"""What every staff page shares: the blueprint, the paging, amounts for forms, and ledger times and days for people
(in the shop's time zone)."""
import logging

from flask import Blueprint, abort, request

from kiosk.core import stamps
from kiosk.web import words
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number

bp = Blueprint("staff", __name__, url_prefix="/staff")
log = logging.getLogger("kiosk.staff")
PAGE_SIZE = 25


def or_404(found):
    """`found`, or a 404 page when there is no such thing (a book, an order)."""
    if found is None:
        abort(404)
    return found


def page_number():
    """The ?page= of a staff list, 1 when missing or not a small whole number."""
    return whole_number(request.args.get("page"), 5, default=1)


def major(minor, currency=None):
    """Minor units as a plain decimal in major units, in the shop currency unless told."""
    return stamps.major(minor, currency or current_kiosk().settings.currency)


def shop_zone():
    """The shop's time zone (KIOSK_TIMEZONE, else the computer's)."""
    return current_kiosk().settings.zone


def today():
    """The shop's date now."""
    return stamps.today(shop_zone())


@bp.app_template_filter("localtime")
def localtime_filter(stamp):
    """A ledger timestamp (UTC) as the shop's local time."""
    moment = stamps.local_time(stamp, shop_zone())
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


# Codes shown as words of the page's language (web/words.py): how an order was paid ("reader", "typed card"), its
# status, a catalog field's name (a CSV column) and why stock moved.
for _name, _say in (("paid_by", words.paid_by), ("order_status", words.status), ("book_field", words.book_field),
                    ("movement", words.movement)):
    bp.add_app_template_filter(_say, _name)
