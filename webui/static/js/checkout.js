// Checkout with the Payment Element, following Stripe's "Accept a payment — collect payment
// details before creating an Intent": Elements in deferred mode, elements.submit(), then the
// server creates the PaymentIntent from its own cart, then stripe.confirmPayment().
//
// When Stripe.js or Stripe's API cannot be reached, the page says payments are briefly unavailable
// and tries again by itself, without reloading (a reload would look like a customer to the idle timer).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("stripe-config").textContent);
  var form = document.getElementById("payment-form");
  var button = /** @type {HTMLButtonElement} */ (document.getElementById("pay"));
  var message = document.getElementById("payment-message");
  var text = window.kiosk.text;
  var idle = window.kioskIdle || { poke: function () {}, pause: function () {}, resume: function () {} };
  // Stripe.js of the release train the server speaks (kiosk/payments.py STRIPE_JS_URL), as the <head> tag.
  var STRIPE_JS = cfg.stripeJs;
  var WAITS = [3000, 5000, 10000, 20000, 30000]; // ms before each new try; then every 30 s
  var tries = 0;
  // Typed for the check against Stripe's published types (tests/node/tsconfig.json); null until loaded.
  /** @type {import("@stripe/stripe-js").Stripe | null} */
  var stripe = null;
  /** @type {import("@stripe/stripe-js").StripeElements | null} */
  var elements = null;

  function show(note) {
    message.textContent = note || "";
    message.hidden = !note;
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function nextWait() {
    return WAITS[Math.min(tries++, WAITS.length - 1)];
  }

  function unavailable(retry) {
    button.disabled = true;
    show(text.unavailable);
    setTimeout(retry, nextWait());
  }

  // Stripe.js from js.stripe.com (never bundled); when the tag in <head> failed, add a fresh one.
  function loadStripe() {
    if (typeof window.Stripe === "function") return Promise.resolve();
    return new Promise(/** @param {(value?: void) => void} resolve */ function (resolve, reject) {
      var script = document.createElement("script");
      script.src = STRIPE_JS;
      script.onload = function () { return typeof window.Stripe === "function" ? resolve() : reject(); };
      script.onerror = function () { script.remove(); reject(); };
      document.head.appendChild(script);
    });
  }

  function start() {
    loadStripe().then(mount, function () { unavailable(start); });
  }

  function mount() {
    stripe = stripe || window.Stripe(cfg.publishableKey);
    // allowedPaymentMethodTypes comes from the server and is ['card'] unless staff choose otherwise: with card
    // alone the Payment Element offers no Link sign-up, so no Link cookie or saved payment details stay
    // on this shared kiosk (and the idle reset forgets the session and the page). It replaced
    // paymentMethodTypes in the Endive release train, whose Stripe.js refuses the old name.
    // Every option here is checked against @stripe/stripe-js's types (tests/node: npm run typecheck).
    var group = stripe.elements({
      mode: "payment",
      amount: cfg.amount,  // minor units, as the server priced the cart: 1500 is ¥1,500 or $15.00
      currency: cfg.currency,
      allowedPaymentMethodTypes: cfg.allowedPaymentMethodTypes,
      locale: cfg.locale,  // the customer's language for their visit, as Stripe.js names it ("fr", "en-GB")
      appearance: { theme: "stripe", variables: { fontSizeBase: "20px", spacingUnit: "5px" } }
    });
    var element = group.create("payment", {
      layout: "tabs",
      wallets: { applePay: "never", googlePay: "never" }
    });
    element.on("ready", function () {
      tries = 0;
      elements = group;
      show("");
      button.disabled = false;
    });
    element.on("loaderror", function () {
      // Stripe's API could not be reached: try again with a fresh Element after a pause.
      elements = null;
      element.destroy();
      unavailable(mount);
    });
    // Typing happens inside Stripe's frame, where the idle timer cannot see it.
    element.on("change", idle.poke);
    element.on("focus", idle.poke);
    element.mount("#payment-element");
  }

  // Ask the server for the PaymentIntent; while Stripe is unreachable, keep trying (the server makes one
  // intent per checkout attempt however often it is asked).
  async function createIntent() {
    for (var attempt = 0; ; attempt++) {
      var reply = await window.kiosk.post("/checkout/intent", { attempt: cfg.attempt });
      if (reply.ok) return reply.data;
      show(reply.data.error || text.unavailable);
      if (reply.data.reload) {
        setTimeout(function () { window.location.reload(); }, 2500);
        return null;
      }
      if (!(reply.status === 0 || reply.data.retry) || attempt >= WAITS.length) return null;
      await sleep(WAITS[attempt]);
    }
  }

  var busy = false;
  var leaving = false;
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy || !elements) return; // a double tap never starts a second payment
    busy = true;
    window.kioskPaying = true; // scanner.js: a scan now must not reload this page
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    idle.pause(); // never reset the kiosk in the middle of a payment
    show("");
    try {
      for (var round = 0; ; round++) {
        var submitted = await elements.submit(); // each confirmation needs its own submit
        if (submitted.error) { show(submitted.error.message); return; }
        var data = await createIntent();
        if (!data) return;
        if (data.paid) { leaving = true; window.location.assign(data.returnUrl); return; }
        var result = await stripe.confirmPayment({
          elements: elements,
          clientSecret: data.clientSecret,
          confirmParams: { return_url: data.returnUrl },
          redirect: "if_required"
        });
        if (!result.error) {
          leaving = true; // keep the button disabled while the confirmation loads
          window.location.assign(data.returnUrl);
          return;
        }
        var type = result.error.type;
        if (type === "api_connection_error" && round < WAITS.length) {
          // Stripe was not reached: ask again. The server answers `paid` if the charge got through after all.
          show(text.unavailable);
          await sleep(WAITS[round]);
          continue;
        }
        // Card and validation errors, and a failed 3-D Secure check (an invalid_request_error with code
        // payment_intent_authentication_failure), carry a message written for the customer.
        // A card the bank refused (declined, expired, failed 3-D Secure) also gets what to do next, as the reader's
        // decline does; a mistyped detail is only to be corrected.
        var code = result.error.code;
        var refused = code === "card_declined" || code === "expired_card" ||
          code === "payment_intent_authentication_failure";
        show(refused ? result.error.message + " " + text.cardNextStep :
          type === "card_error" || type === "validation_error" ? result.error.message : text.payFailed);
        return;
      }
    } catch (err) {
      show(text.unavailable);
    } finally {
      if (!leaving) {
        busy = false;
        window.kioskPaying = false;
        button.disabled = false;
        button.removeAttribute("aria-busy");
        idle.resume();
      }
    }
  });

  start();
})();
