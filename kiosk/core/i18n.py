"""Page text through gettext (Flask-Babel): one catalog, translations/messages.pot, for every language.

Templates use `_()`; Python code uses `gettext` at request time and `lazy_gettext` for module-level
text. Each request has its locale, chosen by the web layer (the customer's language for their visit, the shop's
KIOSK_LOCALE for staff); money and dates follow it through page_locale(). Times are in the shop's time zone
(KIOSK_TIMEZONE), whatever the computer's.
"""
import threading

import pytz
from flask_babel import Babel, format_datetime, get_locale, get_translations, gettext, lazy_gettext, ngettext

from kiosk.core.config import resource_dir
from kiosk.core.stamps import parse_stamp

__all__ = ["TRANSLATIONS", "gettext", "init_app", "lazy_gettext", "ngettext", "page_locale"]

# Bundled beside webui/ so a frozen kiosk finds its .mo files in PyInstaller's unpack folder too.
TRANSLATIONS = resource_dir() / "translations"


def babel_zone(zone):
    """A ZoneInfo as Flask-Babel 4 wants it (pytz's zone of that name); the ZoneInfo itself for a zone newer than
    pytz's copy of the database, which format_datetime takes as well."""
    try:
        return pytz.timezone(zone.key)
    except pytz.UnknownTimeZoneError:
        return zone


# This thread's request (or app context): its locale code and catalog, looked up once and forgotten at its end.
# Flask-Babel's get_locale() and template gettext resolve the context on every call; a page makes about 100.
_here = threading.local()


def _served():
    """(locale code, Translations) of the current request, or None outside one."""
    found = getattr(_here, "found", None)
    if found is None:
        locale = get_locale()
        if locale is None:
            return None
        found = _here.found = (str(locale), get_translations())  # Flask-Babel keeps one catalog per locale
    return found


def _forget(_exc=None):
    _here.found = None


def page_locale(default):
    """The locale code this request is served in ("fr_FR"), or `default` outside a request (a background job)."""
    found = _served()
    return found[0] if found is not None else default


def init_app(app, choose_locale, zone):
    """Serve each page in the locale `choose_locale()` names, from translations/<lang>/LC_MESSAGES/messages.mo,
    its times in the time zone `zone()` gives (asked each request: the settings screen may change it)."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, default_locale="en", locale_selector=choose_locale,
          timezone_selector=lambda: babel_zone(zone()))
    app.teardown_request(_forget)
    app.teardown_appcontext(_forget)

    def translations():
        found = _served()
        return found[1] if found is not None else get_translations()  # Flask-Babel's stand-in outside a request

    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True)

    @app.template_filter("ledger_time")
    def ledger_time(stamp):
        """A ledger timestamp (UTC text) in the page's locale and the shop's time zone: 'Jan 5, 2026, 3:04:05 PM'."""
        when = parse_stamp(stamp)
        return format_datetime(when, "medium") if when else stamp or ""
