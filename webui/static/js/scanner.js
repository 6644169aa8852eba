// USB barcode scanners type the code's digits and Enter into whatever has focus. A scan is told from
// typing by timing: every key of a scan follows the one before it within GAP ms, faster than anyone
// types. A scan anywhere in the shop adds that book to the cart; typing (even fast) goes on as usual.
(function () {
  "use strict";
  var GAP = 50;            // ms between a scanner's keys; people type 100+ ms apart
  var MIN = 8, MAX = 14;   // EAN-8 .. EAN-13 with a spare: shorter bursts are typing, longer are not codes
  var burst = "";
  var last = -Infinity;
  var before = null;       // the focused field and its text when the burst began, to put it back

  function isTextField(el) {
    return el && (el.tagName === "TEXTAREA" ||
      (el.tagName === "INPUT" && /^(text|search|email|tel|url|number|password)$/.test(el.type)));
  }

  function snapshot(el) {
    return isTextField(el) ? { el: el, value: el.value } : null;
  }

  function restore() {
    // The scanner typed its digits into a field: take them out again, and tell the field's owner.
    if (before && before.el.value !== before.value) {
      before.el.value = before.value;
      before.el.dispatchEvent(new CustomEvent("kiosk:scan", { bubbles: true }));
    }
  }

  function added(reply) {
    var data = reply.data || {};
    window.kiosk.toast(data.message || window.kiosk.text.scanFailed, reply.ok ? "ok" : "error");
    if (!reply.ok) return;
    window.kiosk.setCart(data.cart_count, data.cart_label);
    // Pages that show the cart's contents show them afresh; the attract screen moves on to the cart.
    if (document.body.classList.contains("attract")) {
      setTimeout(function () { window.location.assign("/cart"); }, 1200);
    } else if (document.querySelector("[data-cart-page]")) {
      setTimeout(function () { window.location.reload(); }, 1200);
    }
  }

  function scanned(code) {
    restore();
    window.kiosk.post(document.body.dataset.scanUrl, { code: code }).then(added);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing) { burst = ""; return; }
    var now = event.timeStamp; // the event's own time: unaffected by any page clock
    var fast = now - last <= GAP;
    if (/^[0-9]$/.test(event.key) || (event.key === "X" && fast)) {
      if (!fast) { burst = ""; before = snapshot(event.target); }
      burst += event.key;
      last = now;
      // A digit on a select would pick an option (and apply it): selects take arrows, not digits.
      if (event.target && event.target.tagName === "SELECT") event.preventDefault();
      return;
    }
    if (event.key === "Enter" && fast && burst.length >= MIN && burst.length <= MAX) {
      event.preventDefault();  // not a search, not a button press: a scan
      event.stopPropagation();
      var code = burst;
      burst = "";
      scanned(code);
      return;
    }
    burst = "";
    last = -Infinity;
  }, true);
})();
