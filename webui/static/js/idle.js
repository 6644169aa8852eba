// Idle reset for an unattended kiosk. After data-idle-seconds without input a countdown warning
// appears ("I'm still here"); when it runs out the server cancels any open payment and forgets the
// session, and the page is replaced by the attract screen so "back" leads to nothing of the customer.
(function () {
  "use strict";
  var body = document.body;
  var KEY = "kiosk-last-input"; // survives page loads, so a page that reloads itself still times out
  var IDLE = (parseInt(body.dataset.idleSeconds, 10) || 90) * 1000;
  var dialog = document.getElementById("idle-warning");
  var COUNTDOWN = ((dialog && parseInt(dialog.dataset.countdown, 10)) || 15) * 1000;
  var count = document.getElementById("idle-count");
  var startOverButton = document.getElementById("start-over");
  var resetting = false;
  var paused = 0;
  var pausedAt = 0;
  var PAUSE_MAX = 5 * 60 * 1000; // a payment left half-way (a bank's challenge nobody answers) ends too
  var lastInput = Date.now();
  var lastSaved = 0;

  function store(value) {
    try {
      if (value === null) sessionStorage.clear(); else sessionStorage.setItem(KEY, String(value));
    } catch (err) { /* storage off: the timer still runs within the page */ }
  }

  // The reset itself. The server answers even when Stripe cannot be reached; if the kiosk's own server
  // does not answer within 5 s, the attract page finishes the reset (it sees the leftover session).
  function startOver() {
    if (resetting) return;
    resetting = true;
    store(null);
    var done = function () { window.location.replace(body.dataset.attractUrl); };
    var timeout = new Promise(function (resolve) { setTimeout(resolve, 5000); });
    Promise.race([window.kiosk.post(body.dataset.resetUrl, {}, { keepalive: true }), timeout]).then(done, done);
  }

  // A page restored from the back/forward cache must not show the last customer: fetch it afresh.
  window.addEventListener("pageshow", function (event) { if (event.persisted) window.location.reload(); });

  if (body.classList.contains("attract")) {
    store(null);  // "back" stays on this screen: attract.js
    if (document.querySelector("[data-leftover]")) window.kiosk.post(body.dataset.resetUrl, {}, { keepalive: true });
    return;
  }

  try {
    var saved = parseInt(sessionStorage.getItem(KEY), 10);
    if (saved && saved <= Date.now()) lastInput = saved; else store(lastInput);
  } catch (err) { /* see store() */ }

  function showWarning() {
    if (!dialog || dialog.open) return;
    dialog.showModal();
    document.getElementById("still-here").focus();
  }

  function hideWarning() {
    if (dialog && dialog.open) dialog.close();
  }

  function activity(event) {
    if (resetting || (event && startOverButton && event.target === startOverButton)) return;
    // Once the warning shows, only a deliberate touch or key answers it, not a pointer drifting by.
    if (event && dialog && dialog.open && event.type === "pointermove") return;
    lastInput = Date.now();
    if (lastInput - lastSaved > 1000) { lastSaved = lastInput; store(lastInput); }
    hideWarning();
  }

  function check() {
    if (resetting || (paused && Date.now() - pausedAt < PAUSE_MAX)) return;
    // After PAUSE_MAX the warning comes up as if the input had stopped IDLE before it.
    var elapsed = Date.now() - (paused ? Math.max(lastInput, pausedAt + PAUSE_MAX - IDLE) : lastInput);
    if (elapsed < IDLE) { hideWarning(); return; }
    var left = IDLE + COUNTDOWN - elapsed;
    if (left <= 0) { startOver(); return; }
    if (count) count.textContent = String(Math.ceil(left / 1000));
    showWarning();
  }

  ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "input"].forEach(function (type) {
    document.addEventListener(type, activity, { capture: true, passive: true });
  });
  // Not "scroll": the page scrolls by itself too (the on-screen keyboard brings a field into view, results
  // arrive), and that is not a customer. A customer's own scroll starts with a touch, a wheel or a key.
  if (dialog) {
    // Escape closes a modal dialog: that is an answer too.
    dialog.addEventListener("cancel", function (event) { event.preventDefault(); activity(); });
    document.getElementById("still-here").addEventListener("click", function () { activity(); });
    startOverButton.addEventListener("click", startOver);
  }
  // "Done" on the receipt: the same reset, now.
  document.querySelectorAll("form[data-reset-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); startOver(); });
  });

  // For checkout.js: typing in Stripe's iframe never reaches this page, and a payment being confirmed
  // must never be interrupted by a reset.
  window.kioskIdle = {
    poke: function () { activity(); },
    pause: function () { paused++; pausedAt = Date.now(); hideWarning(); },
    resume: function () { paused = Math.max(0, paused - 1); activity(); }
  };
  setInterval(check, 1000);
  check();
})();
