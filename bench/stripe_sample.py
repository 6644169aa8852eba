"""The Stripe sample the kiosk's request path is compared with: stripe-samples/accept-a-payment,
payment-element/server/python/server.py, rebuilt here as it is shaped (the repository cannot be fetched
offline): a Flask app with its static index page, /config, and /create-payment-intent, which creates a
PaymentIntent through stripe-python's global client and answers the client secret. Like the sample, the
amount is fixed and nothing is recorded; it is a reference, not something to ship."""
from pathlib import Path

from flask import Flask, jsonify

INDEX = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Accept a payment</title>
<link rel="stylesheet" href="css/base.css"><script src="https://js.stripe.com/endive/stripe.js"></script>
<script src="/utils.js" defer></script><script src="/index.js" defer></script></head>
<body><main><h1>Payment</h1><form id="payment-form"><div id="payment-element"></div>
<button id="submit">Pay now</button><div id="error-messages"></div></form></main></body></html>
"""


def make_sample(secret_key, api_base, publishable_key, static_dir):
    """The sample's server, pointed at `api_base` the way the kiosk's gateway is (stripe.api_base)."""
    import stripe

    stripe.api_key = secret_key
    stripe.api_base = api_base
    stripe.max_network_retries = 0
    static = Path(static_dir)
    static.mkdir(parents=True, exist_ok=True)
    (static / "index.html").write_text(INDEX, encoding="utf-8")
    app = Flask(__name__, static_folder=str(static), static_url_path="")

    @app.get("/")
    def get_root():
        return app.send_static_file("index.html")

    @app.get("/config")
    def get_config():
        return jsonify(publishableKey=publishable_key)

    @app.post("/create-payment-intent")
    def create_payment():
        # As the sample: one call, its fixed amount, and the client secret back (or Stripe's message).
        try:
            # At the pinned API version (Endive) the sample's payment_method_types is refused: the parameter that
            # replaced it, so that the comparison is of requests Stripe would take.
            intent = stripe.PaymentIntent.create(amount=1999, currency="usd", allowed_payment_method_types=["card"])
            return jsonify(clientSecret=intent.client_secret)
        except stripe.StripeError as e:
            return jsonify(error={"message": str(e)}), 400

    return app
