"""Page text through gettext (Flask-Babel): one catalog, translations/messages.pot, for every language.

Templates use `_()`; Python code uses `gettext` at request time and `lazy_gettext` for module-level
text. The language is the shop's KIOSK_LOCALE: a kiosk speaks one language, whoever stands at it. Times are
in the shop's time zone (KIOSK_TIMEZONE), whatever the computer's.
"""
import pytz
from flask import has_app_context
from flask_babel import Babel, format_datetime, get_translations, gettext, lazy_gettext, ngettext

from kiosk.core.config import resource_dir
from kiosk.core.stamps import parse_stamp

__all__ = ["TRANSLATIONS", "gettext", "init_app", "lazy_gettext", "ngettext"]

# Bundled beside webui/ so a frozen kiosk finds its .mo files in PyInstaller's unpack folder too.
TRANSLATIONS = resource_dir() / "translations"


def babel_zone(zone):
    """A ZoneInfo as Flask-Babel 4 wants it (pytz's zone of that name); the ZoneInfo itself for a zone newer than
    pytz's copy of the database, which format_datetime takes as well."""
    try:
        return pytz.timezone(zone.key)
    except pytz.UnknownTimeZoneError:
        return zone


def init_app(app, locale, zone):
    """Serve every page in the shop's locale from translations/<lang>/LC_MESSAGES/messages.mo, its times in the
    time zone `zone()` gives (asked each request: the settings screen may change it)."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, default_locale="en", locale_selector=lambda: locale, timezone_selector=lambda: babel_zone(zone()))
    # One locale for the app's life, so look its catalog up once: Flask-Babel's template gettext
    # resolves context, locale and domain on every call, which was 37% of the home page (86 calls).
    loaded = []

    def translations():
        if not loaded:
            if not has_app_context():
                return get_translations()  # Flask-Babel's stand-in; the real catalog needs the app
            loaded.append(get_translations())
        return loaded[0]

    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True)

    @app.template_filter("ledger_time")
    def ledger_time(stamp):
        """A ledger timestamp (UTC text) in the shop's locale and time zone, e.g. 'Jan 5, 2026, 3:04:05 PM'."""
        when = parse_stamp(stamp)
        return format_datetime(when, "medium") if when else stamp or ""
