"""Settings from the staff screen: each field checked (the Stripe keys by Stripe itself), saved to `.env`, and
used at once by the running kiosk, without a restart."""
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.numbers import get_territory_currencies

from kiosk.admin import catalog_edits, envfile, pin
from kiosk.core import stamps, tax
from kiosk.core.catalog import CatalogError, load_catalog, parse_upload
from kiosk.core.coded import Coded
from kiosk.core.config import LIVE_KEYS, STRIPE_API_BASE, check_keys, known_currency, load_settings, zone_named
from kiosk.core.datadir import write_private
from kiosk.ledger import audit as audit_log
from kiosk.payments import reconcile
from kiosk.payments.gateway import Gateway, PaymentError

# The form's fields and the settings they write.
SETTINGS = {"shop_name": "KIOSK_SHOP_NAME", "currency": "KIOSK_CURRENCY", "locale": "KIOSK_LOCALE",
            "secret_key": "STRIPE_SECRET_KEY", "publishable_key": "STRIPE_PUBLISHABLE_KEY",
            "idle_seconds": "KIOSK_IDLE_SECONDS", "tax_rates": "KIOSK_TAX_RATES",
            "prices_include_tax": "KIOSK_PRICES_INCLUDE_TAX", "shop_address": "KIOSK_SHOP_ADDRESS",
            "tax_id": "KIOSK_TAX_ID", "pin": "KIOSK_STAFF_PIN_HASH", "timezone": "KIOSK_TIMEZONE",
            "staff_discount_max": "KIOSK_STAFF_DISCOUNT_MAX"}
LATER_ONLY = ("idle_seconds", "tax_rates", "prices_include_tax", "shop_address", "tax_id", "staff_discount_max")
LIMITS = {"shop_name": 60, "shop_address": 300, "tax_id": 40}
MAX_UPLOAD = 60 * 1024 * 1024  # a catalog (8 MB at most) and a covers zip


@dataclass
class Proposal:
    """A checked form: the settings to write, problems by field (nothing is saved while there is one),
    warnings by field (saved anyway), each a Coded the web layer words; what changed in words for the audit list
    (never a key or the PIN)."""

    changes: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    said: list = field(default_factory=list)
    catalog_upload: tuple = None  # (file name, bytes) of a first-run CSV, once checked
    covers: bytes = None


def first_run_open(settings):
    """True while the kiosk has neither a staff PIN nor Stripe keys: anyone at its screen may set it up."""
    return not settings.has_pin and not settings.secret_key and not settings.publishable_key


def key_hint(key):
    """A key as the form shows it: its kind and last four characters, never the whole secret."""
    return f"{key[:8]}…{key[-4:]}" if len(key) > 12 else ""


def form_values(settings):
    """The form's fields as the settings are now (the secret key and the PIN are never sent back)."""
    return {"shop_name": settings.shop_name, "currency": settings.currency.lower(), "locale": settings.locale,
            "publishable_key": settings.publishable_key, "idle_seconds": str(settings.idle_seconds),
            "tax_rates": ",".join(f"{name}:{rate}" for name, rate in settings.tax_rates.items()),
            "prices_include_tax": settings.prices_include_tax, "shop_address": settings.shop_address,
            "tax_id": settings.tax_id, "timezone": settings.timezone,
            "staff_discount_max": str(settings.staff_discount_max)}


def _text(form, name, proposal):
    value = (form.get(name) or "").strip()
    if re.search(r"[\x00-\x1f\x7f]", value):
        proposal.errors[name] = Coded("plain_text", "Use plain text on one line.")
    elif len(value) > LIMITS.get(name, 200):
        proposal.errors[name] = Coded("too_long", "Use at most %(most)s characters.", most=LIMITS.get(name, 200))
    return value


def _change(proposal, settings, name, value, now, said=None):
    """Propose `value` for a field when it differs from what the kiosk uses now."""
    if value != now:
        proposal.changes[SETTINGS[name]] = value
        proposal.said.append(said or name.replace("_", " "))


def _key_refused(exc):
    """Why the secret key could not be checked, as the form says it: only a failure on the way is the internet's."""
    if exc.kind == "auth":
        return Coded("key_refused", "Stripe refused this secret key: it is mistyped, revoked or was rolled. Copy it "
                     "from the Stripe Dashboard, Developers > API keys.")
    if exc.status == 403:  # a restricted key (rk_) without the permissions the kiosk uses
        return Coded("key_permission", "Stripe says this key lacks permission for what the kiosk does. Use the "
                     "standard secret key (sk_), or a restricted key (rk_) with write access to PaymentIntents, "
                     "Refunds and Terminal. Copy it from the Stripe Dashboard, Developers > API keys.")
    if exc.kind in ("network", "server", "rate_limit"):
        return Coded("key_unchecked", "Could not reach Stripe to check the key, so nothing was saved. Check this "
                     "computer's internet connection and save again.")
    return Coded("key_not_checked", "Stripe would not check this key (HTTP %(status)s), so nothing was saved. Copy it "
                 "from the Stripe Dashboard, Developers > API keys.", status=exc.status)


def _live_key_refused(settings, secure):
    """Why this kiosk cannot take live keys, or None when it can."""
    if not secure:
        return Coded("live_needs_window", "Live keys need the kiosk's window: this kiosk is served without it "
                     "(headless, plain HTTP), where Stripe.js refuses live keys. Use test keys here, or set the kiosk "
                     "up from its own window.")
    if settings.api_base != STRIPE_API_BASE:
        # The key would be sent to whatever STRIPE_API_BASE names: a live one goes to Stripe alone.
        return Coded("live_api_base", "This kiosk sends Stripe calls to %(base)s (STRIPE_API_BASE), and a live key "
                     "goes only to Stripe. Remove STRIPE_API_BASE first.", base=settings.api_base)
    return None


def _check_keys(form, settings, proposal, first_run, secure):
    secret = (form.get("secret_key") or "").strip()
    publishable = (form.get("publishable_key") or "").strip()
    if not secret and not first_run:
        secret = settings.secret_key  # left empty: keep the key the kiosk has (the form never shows it)
    fields = {"STRIPE_SECRET_KEY": "secret_key", "STRIPE_PUBLISHABLE_KEY": "publishable_key"}
    problems = check_keys(secret, publishable)
    for problem in problems:
        if not (secret if problem.setting == "STRIPE_SECRET_KEY" else publishable):
            message = Coded("key_paste", "Paste the key here. Copy it from the Stripe Dashboard, Developers > API "
                            "keys.")
        else:  # the checks at start speak of settings; here the field is beside the message
            message = Coded("key_problem", "This key %(problem)s", problem=problem.message)
        proposal.errors.setdefault(fields[problem.setting], message)
    if problems or (secret, publishable) == (settings.secret_key, settings.publishable_key):
        return
    live = secret.startswith(LIVE_KEYS)
    refused = _live_key_refused(settings, secure) if live else None
    if refused:
        proposal.errors["secret_key"] = refused
        return
    try:
        # An authenticated call: a key Stripe refuses (mistyped, revoked, another account's) is caught here.
        Gateway(secret, settings.api_base, timeout=10, retries=0).ping()
    except PaymentError as exc:
        proposal.errors["secret_key"] = _key_refused(exc)
        return
    proposal.changes.update({"STRIPE_SECRET_KEY": secret, "STRIPE_PUBLISHABLE_KEY": publishable})
    proposal.said.append("Stripe keys (" + ("live" if live else "test") + ")")


def _check_pin(form, proposal, first_run):
    new, again = form.get("pin") or "", form.get("pin_again") or ""
    if not new and not again and not first_run:
        return  # left empty: the PIN stays
    problem = pin.problem(new)
    if problem:
        proposal.errors["pin"] = problem
    elif new != again:
        proposal.errors["pin_again"] = Coded("pins_differ", "The two PINs differ. Type the same PIN twice.")
    else:
        proposal.changes["KIOSK_STAFF_PIN_HASH"] = pin.hash_pin(new)
        proposal.changes["KIOSK_STAFF_PIN"] = ""  # a plain PIN left in the file would stop counting anyway
        proposal.said.append("staff PIN")


def _check_shop(form, settings, proposal):
    name = _text(form, "shop_name", proposal)
    if not name:
        proposal.errors["shop_name"] = Coded("shop_name_missing",
                                              "Give the shop a name; it is shown at the top of every page.")
    _change(proposal, settings, "shop_name", name, settings.shop_name)
    currency = (form.get("currency") or "").strip().lower()
    if not known_currency(currency):
        proposal.errors["currency"] = Coded("currency_unknown",
                                             "Choose a three-letter currency code such as usd, eur, gbp or jpy.")
    _change(proposal, settings, "currency", currency, settings.currency.lower())
    locale = (form.get("locale") or "").strip()
    try:
        parsed = Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        proposal.errors["locale"] = Coded("locale_unknown",
                                           "Choose a language and country code such as en_US, en_GB, fr_FR or ja_JP.")
        return
    _change(proposal, settings, "locale", str(parsed), settings.locale, "language")
    home = get_territory_currencies(parsed.territory, date.today()) if parsed.territory else []
    if home and known_currency(currency) and currency.upper() not in home:
        proposal.warnings["currency"] = Coded("currency_elsewhere", "Prices will be in %(currency)s, while "
                                              "%(country)s uses %(home)s: check that your catalog's prices are in "
                                              "%(currency)s.", currency=currency.upper(), country=parsed.territory,
                                              home=home[0])


def _check_timezone(form, settings, proposal):
    """The shop's clock from its picker; a form without the picker (an older page) keeps the zone."""
    if "timezone" not in form:
        return
    zone = (form.get("timezone") or "").strip()
    if zone and zone_named(zone) is None:
        proposal.errors["timezone"] = Coded("timezone_unknown",
                                             "Choose the shop's time zone from the list, such as America/New_York.")
    else:
        _change(proposal, settings, "timezone", zone, settings.timezone, "time zone")


def tax_rates_posted(form):
    """KIOSK_TAX_RATES from the tax-class table (a class and a percent per row), or the plain text field.
    Empty rows are dropped; a half-filled one is kept ("standard:") so parse_rates refuses it."""
    if "tax_class" in form:
        rows = zip(form.getlist("tax_class"), form.getlist("tax_percent"), strict=False)  # a cut-short post: fewer rows
        return ",".join(f"{name.strip()}:{rate.strip()}" for name, rate in rows if name.strip() or rate.strip())
    return (form.get("tax_rates") or "").strip()


def address_posted(form):
    """KIOSK_SHOP_ADDRESS from the address's line inputs (joined with |), or the plain text field."""
    if "address_line" in form:
        lines = [line.strip() for line in form.getlist("address_line") if line.strip()]
        if any("|" in line for line in lines):
            return None  # "|" separates the lines in the settings file
        return "|".join(lines)
    return (form.get("shop_address") or "").strip()


def _check_later(form, settings, proposal):
    raw = (form.get("idle_seconds") or "").strip()
    if not (raw.isascii() and raw.isdigit() and 10 <= int(raw) <= 3600):
        proposal.errors["idle_seconds"] = Coded("idle_seconds", "Use a whole number of seconds from 10 to 3600.")
    else:
        _change(proposal, settings, "idle_seconds", raw, str(settings.idle_seconds), "idle timer")
    most = form.get("staff_discount_max")
    if most is not None:  # a form from before the field was there leaves it as it is
        most = most.strip()
        if not (most.isascii() and most.isdigit() and int(most) <= 100):
            proposal.errors["staff_discount_max"] = Coded("staff_discount_max", "Use a whole percent from 0 (no "
                                                          "staff discounts) to 100.")
        else:
            _change(proposal, settings, "staff_discount_max", str(int(most)), str(settings.staff_discount_max),
                    "staff discount limit")
    rates = tax_rates_posted(form)
    try:
        parsed = tax.parse_rates(rates)
    except tax.TaxRatesError as exc:
        proposal.errors["tax_rates"] = Coded("tax_rates", "%(problem)s. Give each tax class a name (letters, like "
                                             "standard) and a percent from 0 to 100, like 8.875; remove the rows you "
                                             "do not need (none: no tax).", problem=exc)
    else:
        if parsed != settings.tax_rates:
            proposal.changes["KIOSK_TAX_RATES"] = rates
            proposal.said.append("tax rates")
    included = "true" if form.get("prices_include_tax") else "false"
    _change(proposal, settings, "prices_include_tax", included, "true" if settings.prices_include_tax else "false",
            "prices include tax" if included == "true" else "tax added on top")
    address = address_posted(form)
    if address is None:
        proposal.errors["shop_address"] = Coded("address_bar",
                                                 "Write each line of the address in its own box, without |.")
    else:
        _change(proposal, settings, "shop_address", _text({"shop_address": address}, "shop_address", proposal),
                settings.shop_address)
    _change(proposal, settings, "tax_id", _text(form, "tax_id", proposal), settings.tax_id)


def _as_list(found):
    """A field's warnings so far, as a list (none, one, or several)."""
    return [] if found is None else found if isinstance(found, list) else [found]


def _check_catalog(settings, proposal, files):
    """Load the catalog as the new settings would: a currency or tax rate the catalog cannot be sold in is an
    error, rows it would refuse are a warning. A first-run upload is checked here too."""
    currency = proposal.changes.get("KIOSK_CURRENCY", settings.currency).upper()
    rates = settings.tax_rates if "KIOSK_TAX_RATES" not in proposal.changes else \
        tax.parse_rates(proposal.changes["KIOSK_TAX_RATES"])
    upload = files.get("catalog") if files else None
    where = "catalog" if upload and upload.filename else "currency"
    try:
        if where == "catalog":
            data = upload.read()
            found = parse_upload(Path(upload.filename).name or "books.csv", data, currency, rates)
            proposal.catalog_upload = (Path(upload.filename).name, data)
            proposal.said.append(f"catalog {Path(upload.filename).name}")
        elif currency != settings.currency or rates != settings.tax_rates:
            found = load_catalog(settings.catalog_path, currency, rates)
        else:
            found = None
    except CatalogError as exc:
        proposal.errors[where] = exc
        return
    if found is not None and found.warnings:
        refused = "; ".join(str(w) for w in found.warnings[:3])
        said = Coded("catalog_refused_rows", "%(num)s of %(total)s books would not be on sale: %(refused)s",
                     num=found.skipped, total=found.skipped + len(found.books), refused=refused)
        # A currency warning already there is said first (words.say says each in turn).
        proposal.warnings[where] = [*_as_list(proposal.warnings.get(where)), said]
    covers = files.get("covers") if files else None
    if covers and covers.filename:
        data = covers.read()
        try:
            if not proposal.catalog_upload:
                catalog_edits.covers_folder(settings.catalog_path)
            count = catalog_edits.check_covers(data)
        except CatalogError as exc:
            proposal.errors["covers"] = exc
            return
        proposal.covers = data
        proposal.said.append(f"{count} covers")


def _check_environment(settings, proposal):
    """A setting the environment also gives is read from there, whatever .env says: say so instead of saving."""
    environment = os.environ if settings.overrides is None else settings.overrides
    names = {v: k for k, v in SETTINGS.items()}
    for key in proposal.changes:
        if environment.get(key) and key in names:
            proposal.errors.setdefault(names[key], Coded("set_in_environment", "%(setting)s is set in the kiosk's "
                                                         "environment, which wins over the settings file: remove it "
                                                         "there, then change it here.", setting=key))


def check(form, files, settings, first_run, secure=True):
    """Check a settings form; nothing is written. The keys are tried with Stripe when they are new; `secure` says
    the form came over the window's HTTPS (live keys are refused on a headless kiosk's plain HTTP)."""
    proposal = Proposal()
    _check_shop(form, settings, proposal)
    _check_timezone(form, settings, proposal)
    _check_keys(form, settings, proposal, first_run, secure)
    _check_pin(form, proposal, first_run)
    if not first_run:
        _check_later(form, settings, proposal)
    if "tax_rates" not in proposal.errors and "currency" not in proposal.errors:
        _check_catalog(settings, proposal, files)
    _check_environment(settings, proposal)
    return proposal


def _save_catalog(settings, proposal):
    """Write a first-run catalog (and covers) beside .env before .env names it; returns its setting."""
    folder = settings.env_file.parent
    data = proposal.catalog_upload[1]
    target = folder / "books.csv"
    if target.exists():
        target = folder / f"books-{stamps.now().replace(' ', '-').replace(':', '')}.csv"
    try:
        write_private(target, data)
        if proposal.covers:
            catalog_edits.save_covers(folder / "covers", proposal.covers)
    except OSError as exc:
        raise envfile.EnvFileError("catalog_unsaved", "Could not save the catalog in %(folder)s: %(why)s. Nothing "
                                   "was changed. Let the kiosk's user write that folder, then save again.",
                                   folder=str(folder), why=exc.strerror) from None
    return target.name


def save(app, kiosk, db, proposal, revision, area):
    """Write the proposal to .env and use it at once; raises EnvFileError (nothing saved) or CatalogError."""
    old = kiosk.settings
    changes = dict(proposal.changes)
    if proposal.catalog_upload:
        changes["KIOSK_CATALOG"] = _save_catalog(old, proposal)
    elif proposal.covers:
        catalog_edits.save_covers(catalog_edits.covers_folder(old.catalog_path), proposal.covers)
    before = envfile.save(old.env_file, changes, revision)
    new = load_settings(environ=old.overrides, env_file=old.env_file)
    new.stripe_timeout, new.stripe_retries = old.stripe_timeout, old.stripe_retries
    fatal = [p for p in new.problems if p.fatal]
    if fatal:
        envfile.write(old.env_file, before)  # put the file back: the kiosk must start again tomorrow
        raise envfile.EnvFileError("settings_fatal", "These settings would stop the kiosk from starting, so they "
                                   "were not kept: %(problem)s", problem=fatal[0])
    catalog_changed = (new.currency, new.tax_rates, new.catalog_path) != (old.currency, old.tax_rates,
                                                                          old.catalog_path)
    if catalog_changed:
        fresh = load_catalog(new.catalog_path, new.currency, new.tax_rates)
    kiosk.replace_settings(new)
    if catalog_changed:
        catalog_edits.refresh(kiosk, db, fresh)
    if kiosk.reconciler is None and new.payments_ready:
        # Payments just became possible: reconcile from now on, as a kiosk started with these keys does.
        kiosk.reconciler = reconcile.Reconciler(app)
        if kiosk.background:
            kiosk.reconciler.start()
    audit_log.record_audit(db, catalog_edits.who(kiosk), area,
                           ("set up the kiosk: " if area == "setup" else "changed ") + ", ".join(proposal.said))
    return new
