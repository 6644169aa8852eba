// Shop-wide behaviour: shared helpers for the other scripts, search as you type, sold-out books shown as they
// sell, the receipt choices (email form, print button).
(function () {
  "use strict";
  var textNode = document.getElementById("kiosk-text");
  var csrfMeta = document.querySelector("meta[name=csrf-token]");

  // Helpers the kiosk's other scripts share; every visible string comes from the page (translated there).
  var kiosk = window.kiosk = {
    text: textNode ? JSON.parse(textNode.textContent) : {},
    csrf: csrfMeta ? csrfMeta.content : "",

    // POST JSON (or a form's fields) to the kiosk itself; resolves {ok, status, data} and never rejects.
    // `keepalive` lets a request outlive the page that sent it.
    post: function (url, body, options) {
      var opts = options || {};
      var headers = { Accept: "application/json", "X-CSRFToken": kiosk.csrf };
      if (!opts.form) headers["Content-Type"] = "application/json";
      return fetch(url, {
        method: "POST", headers: headers, credentials: "same-origin", keepalive: !!opts.keepalive,
        body: opts.form ? new FormData(opts.form) : JSON.stringify(body || {})
      }).then(function (r) {
        return r.json().catch(function () { return {}; })
          .then(function (data) { return { ok: r.ok, status: r.status, data: data }; });
      }, function () { return { ok: false, status: 0, data: {} }; });
    },

    // A short message where the customer is looking, also read out by screen readers (role=status).
    toast: function (message, kind) {
      var box = document.getElementById("scan-toast");
      if (!box) return;
      clearTimeout(kiosk._toastTimer);
      box.textContent = message;
      box.className = "toast shown " + (kind || "ok");
      kiosk._toastTimer = setTimeout(function () { box.className = "toast"; box.textContent = ""; }, 6000);
    },

    // Keep the header's cart badge, its spoken label and the Checkout button in step with the server.
    setCart: function (count, label, totalText) {
      var badge = document.getElementById("cart-count");
      var spoken = document.getElementById("cart-count-text");
      var barTotal = document.getElementById("cart-bar-total");
      if (badge) badge.textContent = String(count);
      if (barTotal && totalText) barTotal.textContent = totalText;
      if (spoken && label) spoken.textContent = label;
      var header = document.querySelector(".top");
      if (count > 0 && header && !document.getElementById("header-checkout")) {
        var link = document.createElement("a");
        link.id = "header-checkout";
        link.className = "button primary";
        link.href = "/checkout/";
        link.textContent = kiosk.text.checkout || "Checkout";
        header.appendChild(link);
      }
    }
  };

  var input = document.querySelector("[data-live-search]");
  var results = document.getElementById("results");
  if (input) {
    var timer = null;
    var latest = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        var ticket = ++latest;
        var url = "/search?partial=1&q=" + encodeURIComponent(q);
        fetch(url, { headers: { Accept: "text/html" } })
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) {
            if (ticket !== latest) return; // a newer keystroke already answered
            if (!results) {
              // Not on a results page: go to one, keeping what was typed.
              window.location.assign("/search?q=" + encodeURIComponent(q));
              return;
            }
            results.innerHTML = html;
            history.replaceState(null, "", q ? "/search?q=" + encodeURIComponent(q) : "/");
            // New results change the page's height: the on-screen keyboard places them in sight again.
            input.dispatchEvent(new CustomEvent("kiosk:results", { bubbles: true }));
          })
          .catch(function () { /* browsing goes on; the Search button still works */ });
      }, 150);
    });
    // A scanned barcode that landed in the search box is taken back out (scanner.js).
    input.addEventListener("kiosk:scan", function () { clearTimeout(timer); latest++; });
  }

  // Sold out is shown, not discovered: every few seconds ask which of the books on the page have no copy left
  // (another counter may have sold the last one) and show the badge instead of the Add button, or back again.
  // One question at a time: the next is asked 3 s after the last answer, so a slow server is never flooded.
  var SOLD_OUT_POLL = 3000;
  function nextSoldOutCheck() { setTimeout(checkSoldOut, SOLD_OUT_POLL); }
  function checkSoldOut() {
    var shown = document.querySelectorAll("[data-stock-isbn]");
    if (!shown.length || document.hidden) { nextSoldOutCheck(); return; }
    var query = Array.prototype.map.call(shown, function (el) {
      return "isbn=" + encodeURIComponent(el.dataset.stockIsbn);
    }).join("&");
    fetch("/sold-out?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        var sold = data.soldOut || [];
        document.querySelectorAll("[data-stock-isbn]").forEach(function (el) {
          var out = sold.indexOf(el.dataset.stockIsbn) >= 0;
          el.querySelectorAll("[data-sold-out]").forEach(function (badge) { badge.hidden = !out; });
          el.querySelectorAll("[data-in-stock]").forEach(function (add) { add.hidden = out; });
        });
      })
      .catch(function () { /* the next round asks again; the server refuses a sold-out book anyway */ })
      .then(nextSoldOutCheck);
  }
  nextSoldOutCheck();

  // Once the customer took a receipt (printed or emailed), the way out says just "Done".
  var done = document.getElementById("done");
  function receiptTaken() {
    if (done && done.dataset.doneLabel) done.textContent = done.dataset.doneLabel;
  }

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); receiptTaken(); });
  });

  // "Email receipt": bring up the email field with the on-screen keyboard (keyboard.js opens it from its toggle).
  document.querySelectorAll("[data-email-receipt]").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = document.getElementById(button.getAttribute("aria-controls"));
      if (!form) return;
      form.scrollIntoView({ block: "center" });
      var toggle = form.querySelector(".osk-toggle");
      if (toggle && toggle.getAttribute("aria-expanded") !== "true") toggle.click();
      else form.querySelector("input[type=email]").focus();
    });
  });

  var emailForm = document.getElementById("receipt-email-form");
  if (emailForm) {
    var status = document.getElementById("receipt-email-status");
    emailForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = emailForm.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = kiosk.text.sending || "";
      kiosk.post(emailForm.action, null, { form: emailForm }).then(function (reply) {
        button.disabled = false;
        status.textContent = reply.data.message || reply.data.error || kiosk.text.tryAgain;
        status.className = "note " + (reply.ok ? "ok" : "error");
        if (reply.ok) {
          emailForm.querySelector("input[type=email]").value = "";
          receiptTaken();
        }
      });
    });
  }
  document.documentElement.classList.add("js");
})();
