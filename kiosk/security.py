"""Local-origin defences: Host check, CSRF, same-origin POSTs, and response headers."""
from urllib.parse import urlsplit

from flask import abort, request
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}

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
        abort(421)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc.lower() != request.host.lower():
            abort(403)
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site and fetch_site not in ("same-origin", "none"):
            abort(403)


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
    csrf.init_app(app)
    app.before_request(check_request)
    app.after_request(add_headers)
