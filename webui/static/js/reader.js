// The card reader beside the screen (Stripe Terminal, server-driven). "Pay with the card reader" asks the
// server to hand this checkout's payment to the reader; the page then asks the server every second where it
// stands (the server asks Stripe about the reader's action and the PaymentIntent) until it is paid, declined,
// stopped or canceled. Leaving the page while the reader waits cancels the payment there.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("stripe-config").textContent);
  var section = document.getElementById("reader-pay");
  var ready = document.getElementById("reader-ready");
  var waiting = document.getElementById("reader-waiting");
  var start = document.getElementById("reader-start");
  var message = document.getElementById("reader-message");
  var amount = document.getElementById("reader-amount");
  var cancelForm = document.getElementById("reader-cancel-form");
  var text = window.kiosk.text;
  var POLL_MS = 1000;
  var busy = false;
  var onReader = false;
  var leaving = false;

  function show(note) {
    message.textContent = note || "";
    message.hidden = !note;
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function setWaiting(on) {
    onReader = on;
    window.kioskPaying = on; // scanner.js: a scan must not reload this page while the reader waits
    ready.hidden = on;
    waiting.hidden = !on;
    start.disabled = on;
    document.body.classList.toggle("paying-on-reader", on);
  }

  function go(url) {
    leaving = true;
    window.location.assign(url);
  }

  function reloadSoon() {
    leaving = true;
    setTimeout(function () { window.location.reload(); }, 2500);
  }

  function status() {
    return fetch("/checkout/reader/status?attempt=" + encodeURIComponent(cfg.attempt),
      { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .catch(function () { return { state: "waiting", message: text.unavailable }; });
  }

  async function follow() {
    while (onReader && !leaving) {
      await sleep(POLL_MS);
      var data = await status();
      if (data.state === "paid") return go(data.returnUrl);
      // retry: the shop's records are briefly unreachable; the card may already be paid, so keep following it.
      if (data.state === "waiting" || data.retry) { show(data.message || data.error); continue; }
      setWaiting(false);
      show(data.message || data.error || text.payFailed);
      if (data.reload) reloadSoon();
      return;
    }
  }

  start.addEventListener("click", async function () {
    if (busy || onReader) return; // a double tap never starts two reader actions
    busy = true;
    start.disabled = true;
    start.setAttribute("aria-busy", "true");
    show("");
    var reply = await window.kiosk.post("/checkout/reader", { attempt: cfg.attempt });
    busy = false;
    start.removeAttribute("aria-busy");
    if (reply.ok && reply.data.paid) return go(reply.data.returnUrl);
    if (reply.ok) {
      amount.textContent = reply.data.amount || amount.textContent;
      setWaiting(true);
      follow();
      return;
    }
    start.disabled = false;
    show(reply.data.error || text.unavailable);
    if (reply.data.reload) reloadSoon();
  });

  // Cancel submits the form (the page goes back to the checkout); anything else that leaves the page while the
  // reader waits (the header, back, a reload) cancels it too, so the reader never keeps a stranger's amount.
  cancelForm.addEventListener("submit", function () { leaving = true; });
  window.addEventListener("pagehide", function () {
    // busy: Pay is still on its way to the reader; the server cancels it once it is there.
    if ((onReader || busy) && !leaving) navigator.sendBeacon(cancelForm.action, new FormData(cancelForm));
  });

  if (section.dataset.waiting === "true") { // back on this page while the reader still waits
    setWaiting(true);
    follow();
  }
})();
