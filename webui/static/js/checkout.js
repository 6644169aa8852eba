// Checkout with the Payment Element, following Stripe's "Accept a payment — collect payment
// details before creating an Intent": Elements in deferred mode, elements.submit(), then the
// server creates the PaymentIntent from its own cart, then stripe.confirmPayment().
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("stripe-config").textContent);
  var form = document.getElementById("payment-form");
  var button = document.getElementById("pay");
  var message = document.getElementById("payment-message");
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var UNAVAILABLE = "Payments are briefly unavailable. Your cart is kept; trying again in a moment.";

  function show(text) {
    message.textContent = text || "";
    message.hidden = !text;
  }

  if (typeof window.Stripe !== "function") {
    // Stripe.js could not be loaded (network down): say so and try again by itself.
    show(UNAVAILABLE);
    setTimeout(function () { window.location.reload(); }, 10000);
    return;
  }

  var stripe = window.Stripe(cfg.publishableKey);
  var elements = stripe.elements({
    mode: "payment",
    amount: cfg.amount,
    currency: cfg.currency,
    paymentMethodTypes: cfg.paymentMethodTypes,
    appearance: { theme: "stripe", variables: { fontSizeBase: "18px" } }
  });
  var paymentElement = elements.create("payment", {
    layout: "tabs",
    wallets: { applePay: "never", googlePay: "never" }
  });
  paymentElement.on("ready", function () { button.disabled = false; });
  paymentElement.on("loaderror", function () { show(UNAVAILABLE); setTimeout(function () { window.location.reload(); }, 10000); });
  paymentElement.mount("#payment-element");

  var busy = false;
  var leaving = false;
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy) return; // a double tap never starts a second payment
    busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    show("");
    try {
      var submitted = await elements.submit();
      if (submitted.error) { show(submitted.error.message); return; }
      var response = await fetch("/checkout/intent", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ attempt: cfg.attempt })
      });
      var data = await response.json().catch(function () { return { error: UNAVAILABLE }; });
      if (!response.ok) {
        show(data.error || UNAVAILABLE);
        if (data.reload) setTimeout(function () { window.location.reload(); }, 2500);
        return;
      }
      if (data.paid) { leaving = true; window.location.assign(data.returnUrl); return; }
      var result = await stripe.confirmPayment({
        elements: elements,
        clientSecret: data.clientSecret,
        confirmParams: { return_url: data.returnUrl },
        redirect: "if_required"
      });
      if (result.error) {
        // Card and validation errors, and a failed 3-D Secure check (an invalid_request_error with code
        // payment_intent_authentication_failure), carry a message written for the customer.
        show(result.error.type === "card_error" || result.error.type === "validation_error" ||
          result.error.code === "payment_intent_authentication_failure"
          ? result.error.message : "The payment did not go through. Please try again.");
        return;
      }
      leaving = true; // keep the button disabled while the confirmation loads
      window.location.assign(data.returnUrl);
      return;
    } catch (err) {
      show(UNAVAILABLE);
    } finally {
      if (!leaving) {
        busy = false;
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    }
  });
})();
