// USB barcode scanners type the code's digits and Enter into whatever has focus. A scan is told from
// typing by timing: from its first digit to its Enter, a scan's keys come PACE ms apart or less on
// average (scanners send one every few ms; nobody types digits that fast). A pause longer than BREAK
// ends a run of keys. A scan anywhere in the shop adds that book to the cart; typing (even fast words,
// or digits at a person's pace) goes on as usual. A flyer's promotion code (letters and digits, or a QR
// code read as text) scanned outside a text field goes on the cart the same way; the server checks it.
(function () {
  "use strict";
  var PACE = 50;                  // ms per key on average, first digit to Enter; people type 100+ ms apart
  var BREAK = 300;                // ms: a longer pause starts a new run (one hiccup of a busy machine fits)
  var LENGTHS = [13, 12, 10, 8];  // EAN-13/ISBN-13, UPC-A, ISBN-10, EAN-8
  var CODE_MIN = 4, CODE_MAX = 32;  // a promotion code's length, as the kiosk keeps codes
  var KEY = /^[0-9A-Za-z-]$/;       // what a barcode or a code is made of
  var keys = [];                  // the current run: {key, time, field, value before the key}

  function isTextField(el) {
    return !!el && (el.tagName === "TEXTAREA" ||
      (el.tagName === "INPUT" && /^(text|search|email|tel|url|number|password)$/.test(el.type)));
  }

  function fast(run, enterTime) { return (enterTime - run[0].time) / run.length <= PACE; }

  // The fastest-typed barcode the run ends with, else the whole run as a promotion code when it was scanned
  // outside a text field; null when the run was typed at a person's pace.
  function scannedCode(enterTime) {
    for (var i = 0; i < LENGTHS.length; i++) {
      var n = LENGTHS[i];
      if (keys.length < n) continue;
      var run = keys.slice(-n);
      if (run.every(function (k) { return /^[0-9X]$/.test(k.key); }) && fast(run, enterTime)) return run;
    }
    if (keys.length >= CODE_MIN && keys.length <= CODE_MAX && !keys[0].field && fast(keys, enterTime)) return keys;
    return null;
  }

  function restore(run) {
    // The scanner typed its digits into a field: take them out again, and tell the field's owner.
    var start = run[0];
    if (start.field && start.field.value !== start.value) {
      start.field.value = start.value;
      start.field.dispatchEvent(new CustomEvent("kiosk:scan", { bubbles: true }));
    }
  }

  function added(reply) {
    var data = reply.data || {};
    window.kiosk.toast(data.message || window.kiosk.text.scanFailed, reply.ok ? "ok" : "error");
    if (!reply.ok) return;
    window.kiosk.setCart(data.cart_count, data.cart_label, data.total_text);
    // Pages that show the cart's contents show them afresh; the attract screen moves on to the cart.
    // Never while a payment is being confirmed: the book waits in the cart for after the receipt.
    if (document.body.classList.contains("attract")) {
      setTimeout(function () { window.location.assign("/cart"); }, 1200);
    } else if (document.querySelector("[data-cart-page]") && !window.kioskPaying) {
      setTimeout(function () { window.location.reload(); }, 1200);
    }
  }

  document.addEventListener("keydown", function (event) {
    var now = event.timeStamp; // the event's own time: unaffected by any page clock
    var last = keys.length ? keys[keys.length - 1].time : -Infinity;
    if (event.key === "Shift") return; // a scanner holds Shift for a capital: part of the run, not a break
    if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing || now - last > BREAK) keys = [];
    if (KEY.test(event.key) && !event.ctrlKey && !event.altKey && !event.metaKey) {
      var field = isTextField(event.target) ? event.target : null;
      keys.push({ key: event.key, time: now, field: field, value: field ? field.value : "" });
      // A key on a select would pick an option (and apply it): selects take arrows, not digits.
      if (event.target && event.target.tagName === "SELECT") event.preventDefault();
      return;
    }
    var run = event.key === "Enter" && keys.length ? scannedCode(now) : null;
    keys = [];
    if (!run) return;
    event.preventDefault(); // not a search, not a button press: a scan
    event.stopPropagation();
    restore(run);
    var code = run.map(function (k) { return k.key; }).join("");
    window.kiosk.post(document.body.dataset.scanUrl, { code: code }).then(added);
  }, true);
})();
