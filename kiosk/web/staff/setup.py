"""Setting the kiosk up from its own screen: the first-run form (no PIN, no keys yet) and, behind the PIN, Settings."""
import functools
import re
import zoneinfo
from datetime import date

from babel import Locale, localedata
from babel.numbers import get_currency_name, get_territory_currencies
from flask import current_app, flash, redirect, render_template, request, url_for

from kiosk.admin import configure, envfile
from kiosk.core import tax
from kiosk.core.catalog import CatalogError
from kiosk.core.config import computer_zone
from kiosk.core.i18n import gettext as _
from kiosk.ledger.db import get_db
from kiosk.web import words
from kiosk.web.staff.base import bp, log
from kiosk.web.staff.screen import own_screen
from kiosk.web.state import current_kiosk

TAX_ROWS, ADDRESS_LINES = 2, 4  # empty rows offered beyond the filled ones (JS adds more), address lines shown


@functools.cache
def currency_choices(locale):
    """(code, "Canadian Dollar (CAD)") for every currency some country uses today, by name in `locale`."""
    codes = {c for t in Locale("en").territories for c in get_territory_currencies(t, date.today())}
    return sorted(((c.lower(), f"{get_currency_name(c, locale=locale)} ({c})") for c in codes),
                  key=lambda choice: choice[1].casefold())


@functools.cache
def locale_choices():
    """(code, "français (France)") for every language-and-country Babel knows, each named in its own language."""
    codes = [code for code in localedata.locale_identifiers() if "_" in code]
    return sorted(((code, Locale.parse(code).get_display_name() or code) for code in codes),
                  key=lambda choice: choice[1].casefold())


@functools.cache
def timezone_choices():
    """(name, "America / New York") for every IANA time zone this computer knows, in order."""
    return [(zone, zone.replace("_", " ").replace("/", " / ")) for zone in sorted(zoneinfo.available_timezones())]


def _rows(values):
    """The tax table's rows and the address's lines as the form shows them, with empty ones to fill."""
    try:
        rates = [(name, tax.percent(rate)) for name, rate in tax.parse_rates(values["tax_rates"]).items()]
    except tax.TaxRatesError:  # sent back as typed, with its error
        rates = [tuple([*part.split(":", 1), ""][:2]) for part in values["tax_rates"].split(",") if part]
    lines = [line.strip() for line in re.split(r"\||\\n|\n", values["shop_address"] or "") if line.strip()]
    return rates + [("", "")] * TAX_ROWS, lines + [""] * max(ADDRESS_LINES - len(lines), 1)


def _form_page(template, proposal=None, values=None, status=200):
    k = current_kiosk()
    values = values or configure.form_values(k.settings)
    tax_rows, address_lines = _rows(values)
    return render_template(template, values=values, tax_rows=tax_rows, address_lines=address_lines,
                           currencies=currency_choices(k.settings.locale), locales=locale_choices(),
                           timezones=timezone_choices(), computer_zone=computer_zone().key,
                           errors={name: words.say(e) for name, e in (proposal.errors if proposal else {}).items()},
                           warnings={name: words.say(w) for name, w in
                                     (proposal.warnings if proposal else {}).items()},
                           revision=envfile.revision(k.settings.env_file), env_file=k.settings.env_file,
                           secret_hint=configure.key_hint(k.settings.secret_key), catalog=k.catalog,
                           own_screen=own_screen()), status


def _submit(template, area, first_run):
    """Check the posted form, and save it when every field passes; the form again, with each problem, if not."""
    k = current_kiosk()
    form, files = request.form, request.files
    proposal = configure.check(form, files, k.settings, first_run, secure=request.is_secure)
    values = {**configure.form_values(k.settings), **{n: form.get(n, "") for n in configure.SETTINGS
                                                        if n not in ("secret_key", "pin")}}
    values["prices_include_tax"] = bool(form.get("prices_include_tax"))
    values["tax_rates"] = configure.tax_rates_posted(form)
    values["shop_address"] = configure.address_posted(form) or "|".join(form.getlist("address_line"))
    if proposal.errors:
        return _form_page(template, proposal, values, 422)
    try:
        configure.save(current_app._get_current_object(), k, get_db(), proposal, form.get("revision", ""), area)
    except envfile.StaleRevision as exc:
        flash(words.say(exc), "error")
        return _form_page(template, status=409)
    except (envfile.EnvFileError, CatalogError) as exc:
        flash(words.say(exc), "error")
        return _form_page(template, proposal, values, 500 if isinstance(exc, envfile.EnvFileError) else 422)
    log.info("%s saved from the screen: %s", area, ", ".join(proposal.said) or "nothing changed")
    return None


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Set up this kiosk: shop, keys, PIN and catalog; only while it has no PIN and no keys, from its own screen."""
    if not configure.first_run_open(current_kiosk().settings):
        return redirect(url_for("staff.index"))
    if request.method == "GET":
        return _form_page("staff/setup.html")
    if not own_screen():
        log.warning("first-run form: a save without this launch's setup key was refused")
        return _form_page("staff/setup.html", status=403)
    failed = _submit("staff/setup.html", "setup", first_run=True)
    if failed is not None:
        return failed
    flash(_("The kiosk is set up: customers can pay now. Sign in with your new PIN to change anything."), "info")
    return redirect(url_for("staff.index"))


setup.max_upload = configure.MAX_UPLOAD  # a catalog and its covers (kiosk/__init__.py: upload_limit)


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    """The kiosk's settings (shop, keys, PIN, idle timer, tax), with the same checks as the first run."""
    if request.method == "GET":
        return _form_page("staff/settings.html")
    failed = _submit("staff/settings.html", "settings", first_run=False)
    if failed is not None:
        return failed
    flash(_("Settings saved; the kiosk uses them now."), "info")
    return redirect(url_for("staff.settings"))
