"""Optional webhook for shops that run `stripe listen --forward-to`: the same settling code as reconciliation."""
import logging

from flask import Blueprint, jsonify, request

from kiosk.ledger import orders
from kiosk.ledger.db import get_db
from kiosk.payments.gateway import PaymentError, verify_webhook
from kiosk.payments.reconcile import Report, apply_intent
from kiosk.payments.stripe_terms import read_intent_metadata
from kiosk.web.security import csrf_exempt
from kiosk.web.state import current_kiosk

bp = Blueprint("webhooks", __name__, url_prefix="/stripe")
# Stripe signs the request instead: a browser's CSRF token cannot come with it.
csrf_exempt(bp)
log = logging.getLogger("kiosk.webhooks")
INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
                 "payment_intent.processing", "payment_intent.requires_action")


@bp.post("/webhook")
def webhook():
    """Verify Stripe's signature, then settle the event's PaymentIntent from its current state at Stripe."""
    k = current_kiosk()
    if not k.settings.webhook_secret or k.gateway is None:
        return jsonify(error="Webhooks are not set up on this kiosk: set STRIPE_WEBHOOK_SECRET in .env "
                             "(reconciliation works without them)."), 404
    try:
        event = verify_webhook(request.get_data(), request.headers.get("Stripe-Signature", ""),
                               k.settings.webhook_secret)
    except PaymentError as exc:
        log.warning("webhook refused: %s", exc.message)
        return jsonify(error=exc.message), 400
    db = get_db()
    if event.get("type") not in INTENT_EVENTS:
        return jsonify(received=True, ignored=event.get("type"))
    if orders.webhook_seen(db, event["id"]):
        return jsonify(received=True, replayed=True)
    obj = (event.get("data") or {}).get("object") or {}
    if read_intent_metadata(obj.get("metadata") or {}).kiosk_id != k.kiosk_id:
        # One Stripe account may serve several kiosks; this payment is another's.
        return jsonify(received=True, ignored="another kiosk")
    try:
        # Events can arrive late and out of order (Stripe's webhook guide): act on the intent as it is now.
        intent = k.gateway.retrieve(obj["id"])
    except PaymentError as exc:
        log.warning("webhook %s: Stripe unreachable (%s); reconciliation will catch up", event["id"], exc.kind)
        return jsonify(error=exc.message), 503
    order = apply_intent(db, k.catalog, k.kiosk_id, intent, Report(), k.settings.counter_name)
    orders.remember_webhook(db, event, intent.id)
    log.info("webhook %s for %s: order %s", event["type"], intent.id, order["reference"] if order else "none")
    return jsonify(received=True, order=order["reference"] if order else None,
                   status=order["status"] if order else None)
