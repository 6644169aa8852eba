"""Local-origin defences: Host check, CSRF, same-origin POSTs, and response headers."""
import hashlib
import hmac

from flask import Response, abort, current_app, request, session
from werkzeug.exceptions import BadRequest

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
FOREIGN_HOST = "This kiosk only answers its own address. Open the kiosk from its own window."

# Stripe's CSP guide for Stripe.js and the Payment Element: scripts and frames from js.stripe.com,
# 3-D Secure frames from hooks.stripe.com, API calls to api.stripe.com. Inline styles are allowed
# because Stripe.js sizes its iframes with style attributes; scripts stay strictly same-origin.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' https://js.stripe.com",
    "frame-src https://js.stripe.com https://hooks.stripe.com",
    "connect-src 'self' https://api.stripe.com",
    "img-src 'self' data: https://*.stripe.com",
    "style-src 'self' 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def _host_name(netloc):
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    return host.lower()


def check_request():
    """Refuse foreign Host headers (DNS rebinding) and cross-origin state changes."""
    if _host_name(request.host) not in LOCAL_HOSTS:
        # A bare answer: no page, so no session and no CSRF token for a rebinding page to read.
        return Response(FOREIGN_HOST, 421, mimetype="text/plain")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Browsers send Origin on every cross-origin POST, and "null" from sandboxed frames, data: URLs
        # and cross-origin redirects; the kiosk's own pages always send its exact scheme, host and port.
        # A page on another localhost port is same-site (ports do not count), so Sec-Fetch-Site must say
        # same-origin; local programs that send neither header still need the session's CSRF token.
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != request.host_url.rstrip("/").lower():
            abort(403)
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site and fetch_site not in ("same-origin", "none"):
            abort(403)


class CSRFError(BadRequest):
    """A state-changing request without this session's CSRF token."""


_exempt = set()


def csrf_exempt(blueprint):
    """Let a blueprint take POSTs without the token (Stripe's signed webhook cannot carry one)."""
    _exempt.add(blueprint.name)
    return blueprint


def csrf_token():
    """This session's CSRF token: an HMAC of its id, so issuing one writes nothing (a new id still needs its
    cookie, which the session interface sets). A reset or a sign-in changes the id, and with it the token."""
    session.cookie_wanted = True
    key = current_app.secret_key.encode()
    return hmac.new(key, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()


def check_csrf():
    """Refuse a state-changing request whose token is not this session's."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.blueprint in _exempt or request.endpoint is None:
        return  # no endpoint: the 404 or 405 answers first
    sent = request.headers.get("X-CSRFToken") or request.form.get("csrf_token") or ""
    # A browser without the session cookie has no token to send: its request fails here too.
    if not (session.had_cookie and hmac.compare_digest(sent.encode(), csrf_token().encode())):
        raise CSRFError()


def add_headers(response):
    """Security headers on every response; nothing about a customer is ever cached."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    """Install the checks and CSRF protection."""
    app.before_request(check_request)  # first, so a foreign Host is refused before anything else runs
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.after_request(add_headers)
