"""The staff PIN kept as a salted scrypt hash (KIOSK_STAFF_PIN_HASH), so `.env` never holds the PIN itself."""
import base64
import hashlib
import hmac
import re
import secrets
from itertools import pairwise

from kiosk.core.coded import Coded

# scrypt with n=2**14, r=8, p=1 (16 MiB, about 50 ms on the kiosk's 2 cores): a stolen .env costs an attacker
# that much per guess, while a sign-in stays instant. The parameters travel with the hash, so they can grow.
N, R, P = 2 ** 14, 8, 1
MIN_DIGITS = 6
MAX_DIGITS = 12
# ":" separates the parts: "$" would be read by python-dotenv as a variable to interpolate.
_ENCODED = re.compile(r"scrypt:(\d{1,7}):(\d{1,2}):(\d{1,2}):([A-Za-z0-9_-]{16,64}):([A-Za-z0-9_-]{32,128})")


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_pin(pin):
    """The PIN as scrypt:N:r:p:salt:key, with a new random salt each time."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(pin.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt:{N}:{R}:{P}:{_b64(salt)}:{_b64(key)}"


def well_formed(encoded):
    """True when `encoded` looks like a hash hash_pin made (with sane parameters)."""
    found = _ENCODED.fullmatch(encoded or "")
    return bool(found) and 2 <= int(found[1]) <= 2 ** 20 and int(found[2]) >= 1 and int(found[3]) >= 1


def verify(pin, encoded):
    """True when `pin` is the PIN behind `encoded`; the comparison takes the same time whatever differs."""
    if not well_formed(encoded):
        return False
    n, r, p, salt, key = _ENCODED.fullmatch(encoded).groups()
    expected = _unb64(key)
    try:
        got = hashlib.scrypt(pin.encode()[:64], salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=256 * 1024 * 1024)
    except ValueError:  # parameters scrypt refuses (n not a power of two): no PIN matches them
        return False
    return hmac.compare_digest(got, expected)


def problem(pin):
    """Why a new PIN cannot protect the staff area (a Coded the web layer words), or None: at least six digits, and
    not a guessable run."""
    if not (pin.isascii() and pin.isdigit()):
        return Coded("pin_digits", "Use digits only, at least %(num)s of them.", num=MIN_DIGITS)
    if len(pin) < MIN_DIGITS:
        return Coded("pin_short", "Use at least %(num)s digits.", num=MIN_DIGITS)
    if len(pin) > MAX_DIGITS:
        return Coded("pin_long", "Use at most %(num)s digits.", num=MAX_DIGITS)
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {-1}):
        return Coded("pin_guessable", "Choose a PIN that is harder to guess than a repeated digit or a run like "
                     "123456.")
    return None
