"""The kiosk's own screen, told apart from every other program on the computer by this launch's screen key.

Any program can reach 127.0.0.1 and forge Origin, Referer or any other header, so the kiosk gives its window (and
whoever started it headless, in the terminal) a key no page shows: the address below turns it into a cookie.
The first-run form takes saves only from it, and it keeps its own count of wrong PINs (signin.py)."""
import hmac
import time

from flask import redirect, request, url_for

from kiosk.core.i18n import gettext as _
from kiosk.web.staff.base import bp, log
from kiosk.web.state import current_kiosk
from kiosk.web.views import reply, safe_next

SCREEN_COOKIE = "kiosk_screen"
# Keys that are not this launch's, at most this many a minute; past that they are refused unread (429). The right
# key is always taken, so a script offering wrong ones cannot shut the window out.
WRONG_KEYS_A_MINUTE = 20


def own_screen():
    """True when the request holds this launch's screen key: the kiosk's window, or the address printed for it."""
    given = request.cookies.get(SCREEN_COOKIE, "")
    return hmac.compare_digest(given.encode(), current_kiosk().screen_token.encode())


@bp.get("/screen")
def screen():
    """GET ?key=&next=: a right key becomes the screen cookie, and the address bar (and history) loses it."""
    k = current_kiosk()
    key = request.args.get("key", "")
    # A backslash counts as a slash to browsers: "/\\evil.example" would leave the kiosk.
    then = request.args.get("next", "").replace("\\", "/")
    response = redirect(safe_next(then, url_for("staff.index")), 303)
    if hmac.compare_digest(key.encode(), k.screen_token.encode()):
        # Until the browser closes; the idle reset clears it in the window, and the launcher hands it back.
        response.set_cookie(SCREEN_COOKIE, key, httponly=True, samesite="Strict", secure=request.is_secure,
                            path=url_for("staff.index"))
        return response
    now = time.monotonic()
    k.wrong_keys = [*[t for t in k.wrong_keys if now - t < 60][-WRONG_KEYS_A_MINUTE:], now]
    if len(k.wrong_keys) > WRONG_KEYS_A_MINUTE:
        return reply(429, _("Too many wrong keys. Try again in a minute."))
    log.warning("a screen key that is not this launch's was refused")
    return response
