"""What every page shares: template helpers and friendly error pages."""
import logging

from flask import jsonify, render_template, request, session
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from . import kiosk

log = logging.getLogger("kiosk")

FRIENDLY = {
    400: ("Something about that request was not right.", "Go back and try again."),
    403: ("That action is not allowed from here.", "Use the kiosk screen to continue."),
    404: ("We could not find that page.", "Return to the shop to keep browsing."),
    405: ("That action is not allowed from here.", "Return to the shop to keep browsing."),
    413: ("That request was too large.", "Go back and try again."),
    421: ("This kiosk only answers its own address.", "Open the kiosk from its own window."),
    429: ("Too many tries.", "Wait a few minutes and try again."),
}


def wants_json():
    """True for fetch() calls from the kiosk's own scripts."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


def error_response(status, message, action, **extra):
    """A JSON error for scripts, or a friendly page for people; never a stack trace."""
    if wants_json():
        return jsonify(error=message, action=action, **extra), status
    return render_template("error.html", status=status, message=message, action=action), status


def init_app(app):
    """Register template helpers and error handlers."""

    @app.template_filter("money")
    def money_filter(minor):
        return kiosk().money(minor)

    @app.context_processor
    def shared():
        k = kiosk()
        cart = session.get("cart") or {}
        return {"shop_name": k.settings.shop_name, "test_mode": k.settings.test_mode,
                "cart_count": sum(cart.values()), "settings": k.settings}

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, "This page was open too long or came from elsewhere.",
                              "Reload the page and try again.", reload=True)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        message, action = FRIENDLY.get(exc.code, (exc.name + ".", "Return to the shop."))
        return error_response(exc.code, message, action)

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "Something went wrong on the kiosk. Nothing was charged by this step.",
                              "Please try again; if it keeps happening, ask a member of staff.")
