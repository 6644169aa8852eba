"""Settings from `.env` and the environment, checked once at start."""
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.localtime import get_localzone
from babel.numbers import get_currency_name
from dotenv import dotenv_values
from flask_babel import lazy_gettext as _l
from platformdirs import user_data_dir

from kiosk.core import tax

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # kiosk/: this file is kiosk/core/config.py


def resource_dir():
    """Folder holding `webui/` and the sample catalog: the source tree or PyInstaller's unpack folder."""
    return Path(getattr(sys, "_MEIPASS", PACKAGE_DIR.parent))


def env_file_path():
    """Where `.env` is read from: beside the executable when frozen, else the working folder."""
    if os.environ.get("KIOSK_ENV_FILE"):
        return Path(os.environ["KIOSK_ENV_FILE"])
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / ".env"
    return Path.cwd() / ".env"


SAMPLE_CATALOG = "sample_catalog/books.csv"
# Stripe's own API: the only address a live secret key is ever sent to (STRIPE_API_BASE is for tests with test keys).
STRIPE_API_BASE = "https://api.stripe.com"
LIVE_KEYS = ("sk_live_", "rk_live_")


@dataclass
class Problem:
    """One thing wrong with the configuration, and how to fix it: message and fix are lazy texts, in English at the
    terminal and in the page's language on the staff screens."""

    setting: str
    message: str
    fix: str
    fatal: bool = False
    warning: bool = False  # the kiosk works, but staff should fix it (shown at start, in --check and to staff)
    blocks_payments: bool = False  # the shop browses, but checkout says pay at the counter until it is fixed

    def __str__(self):
        return f"{self.setting}: {self.message} {self.fix}"


@dataclass
class Settings:
    """Everything the kiosk reads from its environment."""

    secret_key: str = ""
    publishable_key: str = ""
    api_base: str = STRIPE_API_BASE
    webhook_secret: str = ""
    currency: str = "USD"
    locale: str = "en_US"
    # KIOSK_LANGUAGES without the shop's own locale: the other languages a customer may choose for their visit
    other_languages: tuple = ()
    shop_name: str = "Book Counter"
    unpaid_message: str = ""  # KIOSK_UNPAID_MESSAGE: what customers read before payments are set up
    catalog_path: Path = None
    data_dir: Path = None
    payment_methods: tuple = ("card",)
    staff_pin: str = ""
    staff_pin_hash: str = ""  # KIOSK_STAFF_PIN_HASH, written by the set-up screen (pin.py); wins over a plain PIN
    terminal_reader: str = ""  # STRIPE_TERMINAL_READER: the card reader (tmr_...) offered at checkout
    print_receipts: bool = False
    reconcile_seconds: int = 60
    abandon_minutes: int = 30
    idle_seconds: int = 90
    # KIOSK_STAFF_DISCOUNT_MAX: the most percent off a cart staff may give behind the PIN; 0: no staff discounts
    staff_discount_max: int = 20
    windowed: bool = False
    tax_rates: dict = field(default_factory=dict)  # KIOSK_TAX_RATES as {class: Decimal percent}; {}: no tax
    prices_include_tax: bool = False  # KIOSK_PRICES_INCLUDE_TAX: EU/UK style, the catalog's prices include it
    tax_name: str = ""  # KIOSK_TAX_NAME; empty: "Sales tax", or "VAT" when prices include it
    shop_address: str = ""  # KIOSK_SHOP_ADDRESS, printed on receipts ("|" or a new line between lines)
    tax_id: str = ""  # KIOSK_TAX_ID, printed on receipts
    database_url: str = ""  # KIOSK_DATABASE_URL: a shared PostgreSQL ledger; empty is SQLite in the data folder
    counter_name: str = "Main counter"  # KIOSK_COUNTER_NAME: which kiosk took an order, for staff and receipts
    timezone: str = ""  # KIOSK_TIMEZONE: the shop's clock (an IANA name); empty: the computer's time zone
    stripe_timeout: float = 20.0
    stripe_retries: int = 2
    env_file: Path = None
    # The environment the settings were read with (None: os.environ), so a save on screen reads them the same way.
    overrides: dict = None
    problems: list = field(default_factory=list)

    @property
    def payments_ready(self):
        """True when both keys are present and consistent, and nothing else stops payments (a bad tax rate)."""
        return not check_keys(self.secret_key, self.publishable_key) and \
            not any(p.blocks_payments for p in self.problems)

    @property
    def has_pin(self):
        """True when a staff PIN is configured, plain or hashed."""
        return bool(self.staff_pin or self.staff_pin_hash)

    @property
    def languages(self):
        """The locales a customer may choose, the shop's own first (one: no language button)."""
        return (self.locale, *(code for code in self.other_languages if code != self.locale))

    @property
    def tax_label(self):
        """What the tax is called on the screen and the receipt."""
        return self.tax_name or ("VAT" if self.prices_include_tax else "Sales tax")

    @property
    def address_lines(self):
        """KIOSK_SHOP_ADDRESS as lines (written with "|" or new lines between them)."""
        return [line.strip() for line in re.split(r"\||\\n|\n", self.shop_address) if line.strip()]

    @property
    def shows_counter(self):
        """True when receipts name the counter: it was given a name, or the shop has several on one ledger."""
        return self.counter_name != Settings.counter_name or bool(self.database_url)

    @property
    def zone(self):
        """The shop's time zone, for every time and day shown, printed or exported (the ledger stays in UTC)."""
        return zone_named(self.timezone) or computer_zone()

    @property
    def test_mode(self):
        """True when the keys are Stripe test keys."""
        return self.secret_key.startswith(("sk_test_", "rk_test_"))

    @property
    def live_mode(self):
        """True when the keys are Stripe live keys."""
        return self.secret_key.startswith(LIVE_KEYS)


def _key_mode(key):
    if "_test_" in key[:8]:
        return "test"
    if "_live_" in key[:8]:
        return "live"
    return None


def check_keys(secret, publishable):
    """Problems with the pair of Stripe keys; an empty list when they are usable."""
    where = _l("Enter both on the kiosk's screen: press Staff, then Set up this kiosk (or Settings, once a PIN is "
               "set); or put them in .env (see .env.example) before the kiosk starts.")
    dashboard = _l("Copy both keys from the Stripe Dashboard, Developers > API keys.")
    copy = _l("%(dashboard)s %(where)s", dashboard=dashboard, where=where)
    problems = []
    if not secret and not publishable:
        return [Problem("STRIPE_SECRET_KEY", _l("Payments are not set up: no Stripe keys are configured."), copy)]
    if secret.startswith("pk_"):
        problems.append(Problem("STRIPE_SECRET_KEY", _l("holds a publishable key (pk_…), not a secret key."),
                                _l("Swap the two keys: the secret key starts with sk_. %(where)s", where=where)))
    elif secret and not secret.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        problems.append(Problem("STRIPE_SECRET_KEY",
                                _l("is not a Stripe secret key (expected sk_test_… or sk_live_…)."), copy))
    if publishable.startswith(("sk_", "rk_")):
        problems.append(Problem("STRIPE_PUBLISHABLE_KEY",
                                _l("holds a secret key (sk_…), which must never reach a browser."),
                                _l("Swap the two keys: the publishable key starts with pk_. %(where)s", where=where)))
    elif publishable and not publishable.startswith(("pk_test_", "pk_live_")):
        problems.append(Problem("STRIPE_PUBLISHABLE_KEY",
                                _l("is not a Stripe publishable key (expected pk_test_… or pk_live_…)."), copy))
    if not secret:
        problems.append(Problem("STRIPE_SECRET_KEY", _l("is missing."), copy))
    if not publishable:
        problems.append(Problem("STRIPE_PUBLISHABLE_KEY", _l("is missing."), copy))
    if not problems and _key_mode(secret) != _key_mode(publishable):
        problems.append(Problem("STRIPE_SECRET_KEY",
                                _l("is a %(mode)s key but STRIPE_PUBLISHABLE_KEY is a %(other)s key.",
                                   mode=_key_mode(secret), other=_key_mode(publishable)),
                                _l("Use both test keys or both live keys from the same Stripe account.")))
    return problems


def _check_api_base(s, api_base):
    """Take STRIPE_API_BASE only with test keys: the secret key goes to whatever server it names, and a live key
    goes to Stripe's own API alone. Problems to report; s.api_base is left as Stripe's when it is refused."""
    if not api_base or api_base.rstrip("/") == STRIPE_API_BASE:
        return []
    if s.live_mode:
        return [Problem("STRIPE_API_BASE", _l("sends Stripe calls to %(base)s, and a live secret key goes only to "
                                              "Stripe's own API (%(stripe)s).", base=api_base, stripe=STRIPE_API_BASE),
                        _l("Remove STRIPE_API_BASE from .env and the environment (it is for tests with test keys), "
                           "then restart the kiosk."), blocks_payments=True)]
    s.api_base = api_base
    return [Problem("STRIPE_API_BASE", _l("sends Stripe calls (with the test secret key) to %(base)s instead of "
                                          "Stripe.", base=api_base),
                    _l("This is for tests only: remove it to reach Stripe."), warning=True)]


def known_currency(code):
    """True for a three-letter ISO currency code Babel (and so Stripe) knows."""
    return len(code) == 3 and get_currency_name(code.upper(), locale="en") != code.upper()


def zone_named(name):
    """The IANA time zone called `name` (America/New_York), or None when there is none by that name."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError, OSError):  # ValueError: not a zone's name at all (a path, "..")
        return None


def computer_zone():
    """The computer's own time zone by name (TZ, /etc/localtime, /etc/timezone, or Windows' setting), else UTC."""
    try:
        # Babel's copy of tzlocal: it reads the name where each system keeps it. pytz or zoneinfo, by what is installed.
        found = get_localzone()
    except (LookupError, OSError, ValueError):
        return ZoneInfo("UTC")
    return zone_named(getattr(found, "key", None) or getattr(found, "zone", None)) or ZoneInfo("UTC")


def parse_languages(raw):
    """KIOSK_LANGUAGES ("en_US,fr_FR,ja_JP") as (locale codes as Babel writes them, entries it does not know)."""
    codes, unknown = [], []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            code = str(Locale.parse(entry.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            unknown.append(entry)
            continue
        if code not in codes:
            codes.append(code)
    return tuple(codes), unknown


def _int(values, name, default, problems, minimum=0):
    raw = values.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
        if value < minimum:
            raise ValueError
        return value
    except ValueError:
        problems.append(Problem(name, _l("must be a whole number of at least %(minimum)s, not %(value)s.",
                                         minimum=minimum, value=repr(raw)),
                                _l("Fix it in .env; using %(default)s meanwhile.", default=default)))
        return default


def load_settings(environ=None, env_file=None):
    """Read `.env`, let the environment override it, and check every value."""
    env_file = Path(env_file) if env_file else env_file_path()
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file.is_file() else {}
    problems = []
    if env_file.is_file() and os.name == "posix" and os.stat(env_file).st_mode & 0o077:
        # It holds the secret key and the staff PIN: any other account could read them.
        problems.append(Problem(str(env_file), _l("can be read by other users of this computer, and it holds the "
                                                  "Stripe secret key and the staff PIN."),
                                _l("Run: %(command)s", command=f"chmod 600 {env_file}"), warning=True))
    values.update(os.environ if environ is None else environ)
    values = {k: (v or "").strip() for k, v in values.items()}
    s = Settings(env_file=env_file, overrides=None if environ is None else dict(environ))  # defaults: in Settings
    s.secret_key = values.get("STRIPE_SECRET_KEY", "")
    s.publishable_key = values.get("STRIPE_PUBLISHABLE_KEY", "")
    problems += check_keys(s.secret_key, s.publishable_key)
    problems += _check_api_base(s, values.get("STRIPE_API_BASE", ""))
    s.webhook_secret = values.get("STRIPE_WEBHOOK_SECRET", "")
    reader = values.get("STRIPE_TERMINAL_READER", "")
    if reader and not re.fullmatch(r"tmr_[A-Za-z0-9]{4,64}", reader):
        problems.append(Problem("STRIPE_TERMINAL_READER", _l("%(value)s is not a Stripe Terminal reader id.",
                                                             value=repr(reader)),
                                _l("Copy the reader's id (tmr_...) from the staff area's Card reader page or the "
                                   "Stripe Dashboard; until then customers type their card."), warning=True))
    else:
        s.terminal_reader = reader

    currency = (values.get("KIOSK_CURRENCY") or s.currency).upper()
    if not known_currency(currency):
        problems.append(Problem("KIOSK_CURRENCY", _l("%(value)s is not a currency code Stripe knows.",
                                                     value=repr(currency)),
                                _l("Use a three-letter ISO code such as usd, eur, gbp or jpy."), fatal=True))
    s.currency = currency
    locale = values.get("KIOSK_LOCALE") or s.locale
    try:
        Locale.parse(locale)
        s.locale = locale
    except (UnknownLocaleError, ValueError):
        problems.append(Problem("KIOSK_LOCALE", _l("%(value)s is not a known locale.", value=repr(locale)),
                                _l("Use a code such as en_US, en_GB, fr_FR or ja_JP; using %(locale)s meanwhile.",
                                   locale=s.locale)))
    s.other_languages, unknown = parse_languages(values.get("KIOSK_LANGUAGES", ""))
    if unknown:
        problems.append(Problem("KIOSK_LANGUAGES", f"{', '.join(map(repr, unknown))} "
                                f"{'is not a known locale' if len(unknown) == 1 else 'are not known locales'}.",
                                "List locale codes separated by commas, such as en_US,fr_FR,de_DE,ja_JP; the "
                                "others are offered meanwhile.", warning=True))
    s.shop_name = values.get("KIOSK_SHOP_NAME") or s.shop_name
    s.unpaid_message = values.get("KIOSK_UNPAID_MESSAGE", "")[:200]
    timezone = values.get("KIOSK_TIMEZONE", "")
    if zone_named(timezone):
        s.timezone = timezone
    elif timezone:
        problems.append(Problem("KIOSK_TIMEZONE", _l("%(value)s is not a time zone name.", value=repr(timezone)),
                                _l("Use an IANA name such as America/New_York, Europe/London or Australia/Sydney, or "
                                   "leave it empty for the computer's; using the computer's (%(zone)s) meanwhile.",
                                   zone=computer_zone().key)))

    catalog = values.get("KIOSK_CATALOG")
    if catalog:
        path = Path(catalog).expanduser()
        if not path.is_absolute():
            path = env_file.parent / path
    else:
        path = resource_dir() / SAMPLE_CATALOG
    s.catalog_path = path
    if not path.is_file():
        problems.append(Problem("KIOSK_CATALOG", _l("no catalog file at %(path)s.", path=str(path)),
                                _l("Point KIOSK_CATALOG at your books CSV, or remove it to use the sample catalog."),
                                fatal=True))
    s.data_dir = Path(values.get("KIOSK_DATA_DIR") or user_data_dir("book-counter-kiosk", "BookCounter"))
    s.database_url = values.get("KIOSK_DATABASE_URL", "")
    if s.database_url and not re.fullmatch(r"postgres(ql)?://[^/\s]+/[^/\s]+", s.database_url):
        problems.append(Problem("KIOSK_DATABASE_URL", _l("is not a PostgreSQL address."),
                                _l("Write it as postgresql://user:password@host:5432/dbname, or remove it to keep "
                                   "the ledger in SQLite on this kiosk."), fatal=True))
    s.counter_name = values.get("KIOSK_COUNTER_NAME", "")[:40] or s.counter_name
    try:
        s.tax_rates = tax.parse_rates(values.get("KIOSK_TAX_RATES", ""))
    except tax.TaxRatesError as exc:
        # Taking payments with the wrong tax would be worse than not taking them: checkout waits for the fix.
        problems.append(Problem("KIOSK_TAX_RATES", _l("%(why)s.", why=str(exc)),
                                _l("Write class:percent pairs separated by commas, like standard:8.875,zero:0; "
                                   "payments wait until it is fixed."), blocks_payments=True))
    s.prices_include_tax = values.get("KIOSK_PRICES_INCLUDE_TAX", "").lower() in ("1", "true", "yes", "on")
    s.tax_name = values.get("KIOSK_TAX_NAME", "")[:20]
    s.shop_address = values.get("KIOSK_SHOP_ADDRESS", "")[:300]
    s.tax_id = values.get("KIOSK_TAX_ID", "")[:40]

    methods = tuple(m.strip() for m in values.get("KIOSK_PAYMENT_METHODS", "").split(",") if m.strip())
    s.payment_methods = methods or s.payment_methods
    s.staff_pin = values.get("KIOSK_STAFF_PIN", "")
    s.staff_pin_hash = values.get("KIOSK_STAFF_PIN_HASH", "")
    # Shops with a receipt printer get a Print button on the confirmation (80 mm print layout).
    s.print_receipts = values.get("KIOSK_PRINT_RECEIPTS", "").lower() in ("1", "true", "yes", "on")
    s.reconcile_seconds = _int(values, "KIOSK_RECONCILE_SECONDS", s.reconcile_seconds, problems, minimum=5)
    s.abandon_minutes = _int(values, "KIOSK_ABANDON_MINUTES", s.abandon_minutes, problems, minimum=1)
    s.idle_seconds = _int(values, "KIOSK_IDLE_SECONDS", s.idle_seconds, problems, minimum=10)
    s.staff_discount_max = min(100, _int(values, "KIOSK_STAFF_DISCOUNT_MAX", s.staff_discount_max, problems))
    # Full screen is the kiosk; KIOSK_WINDOWED=1 gives developers a normal window.
    s.windowed = values.get("KIOSK_WINDOWED", "").lower() in ("1", "true", "yes", "on")
    s.problems = problems
    return s
