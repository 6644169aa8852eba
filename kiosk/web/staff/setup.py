"""Setting the kiosk up from its own screen: the first-run form (no PIN, no keys yet) and, behind the PIN, Settings."""
from flask import current_app, flash, redirect, render_template, request, url_for

from kiosk.admin import configure, envfile
from kiosk.core.catalog import CatalogError
from kiosk.core.i18n import gettext as _
from kiosk.ledger.db import get_db
from kiosk.web.staff.base import bp, log
from kiosk.web.staff.screen import own_screen
from kiosk.web.state import current_kiosk

CURRENCIES = ("usd", "eur", "gbp", "cad", "aud", "chf", "jpy", "sek", "nok", "dkk", "nzd")
LOCALES = ("en_US", "en_GB", "en_CA", "en_AU", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "ja_JP")


def _form_page(template, proposal=None, values=None, status=200):
    k = current_kiosk()
    return render_template(template, values=values or configure.form_values(k.settings),
                           errors=proposal.errors if proposal else {},
                           warnings=proposal.warnings if proposal else {},
                           revision=envfile.revision(k.settings.env_file), env_file=k.settings.env_file,
                           secret_hint=configure.key_hint(k.settings.secret_key), currencies=CURRENCIES,
                           locales=LOCALES, catalog=k.catalog, own_screen=own_screen()), status


def _submit(template, area, first_run):
    """Check the posted form, and save it when every field passes; the form again, with each problem, if not."""
    k = current_kiosk()
    form, files = request.form, request.files
    proposal = configure.check(form, files, k.settings, first_run, secure=request.is_secure)
    values = {**configure.form_values(k.settings), **{n: form.get(n, "") for n in configure.SETTINGS
                                                        if n not in ("secret_key", "pin")}}
    values["prices_include_tax"] = bool(form.get("prices_include_tax"))
    if proposal.errors:
        return _form_page(template, proposal, values, 422)
    try:
        configure.save(current_app._get_current_object(), k, get_db(), proposal, form.get("revision", ""), area)
    except envfile.StaleRevision as exc:
        flash(str(exc), "error")
        return _form_page(template, status=409)
    except (envfile.EnvFileError, CatalogError) as exc:
        flash(str(exc), "error")
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
