/* A test double of Stripe.js of the Endive release train for the browser tests: the Payment Element surface the
 * kiosk's checkout uses.
 *
 * The tests serve this file in place of https://js.stripe.com/endive/stripe.js (kiosk/payments.py
 * STRIPE_JS_URL; a Playwright route in tests/support/browser.py); the legacy https://js.stripe.com/v3/ is not
 * served at all. Nothing here ships.
 * It follows Stripe's Stripe.js reference ("Elements without an Intent", elements.submit(),
 * stripe.confirmPayment(), stripe.retrievePaymentIntent()) and talks to https://api.stripe.com/v1 the way
 * Stripe.js does: form-encoded, the publishable key as `key`, and the PaymentIntent's client secret.
 * The test layer answers those calls from localstripe.
 *
 * Like real Stripe.js it throws an IntegrationError when the page calls it wrongly (confirmPayment before
 * elements.submit(), no client secret, mounting twice...). Every such error is also kept in
 * window.__stripeDouble.integrationErrors so a test fails even when the page catches the throw.
 *
 * Like Stripe.js of its train, it accepts only the options that train defines. The names come from Stripe's
 * published types of the train (@stripe/stripe-js in tests/node: dist/stripe-js/elements-group.d.ts,
 * elements/payment.d.ts, stripe.d.ts, payment-intents.d.ts), read by tests/support/stripe_types.py and written
 * into TRAIN below as the tests serve this file. Any other option of stripe.elements(), elements.update(),
 * elements.create("payment"), paymentElement.update() or stripe.confirmPayment() (and its confirmParams) is an
 * IntegrationError; so is paymentMethodTypes, which Endive replaced with allowedPaymentMethodTypes. Every such
 * call is kept, with the options passed, in window.__stripeDouble.calls.
 */
(function () {
  "use strict";

  var API = "https://api.stripe.com/v1";
  var AUTH_FAILED = "We are unable to authenticate your payment method. Please choose a different payment " +
    "method and try again.";
  var CONNECTION = "An error occurred with our connection to Stripe. Request was retried 0 times.";
  // {release, options: {elements, elementsUpdate, paymentElement, paymentElementUpdate, confirmPayment,
  // confirmParams}}: written in by tests/support/browser.py from the installed @stripe/stripe-js types.
  var TRAIN = /*@TRAIN@*/null;
  if (!TRAIN) throw new Error("stripe-endive.js: served without the release train's option names (TRAIN).");
  var state = window.__stripeDouble = { release: TRAIN.release, integrationErrors: [], requests: [], calls: [] };

  function integrationError(message) {
    state.integrationErrors.push(message);
    console.error("IntegrationError: " + message); // seen by the tests even when the page catches the throw
    var error = new Error(message);
    error.name = "IntegrationError";
    return error;
  }

  // A JSON copy of what the page passed (its Elements instance named, not copied), kept in state.calls.
  function record(method, options) {
    var copy = null;
    try {
      copy = JSON.parse(JSON.stringify(options === undefined ? null : options, function (key, value) {
        return value instanceof Elements ? "[Elements]" : value;
      }));
    } catch (err) {
      copy = String(options);
    }
    var names = options && typeof options === "object" ? Object.keys(options) : [];
    state.calls.push({ method: method, names: names, options: copy });
  }

  // Only the options the train's types define (TRAIN.options[kind]); the first one it does not is an error.
  function checkNames(options, kind, method) {
    if (!options || typeof options !== "object") return;
    if ("paymentMethodTypes" in options) {
      throw integrationError("Invalid " + method + " parameter: paymentMethodTypes is not supported in the " +
        TRAIN.release + " release of Stripe.js. Use allowedPaymentMethodTypes instead.");
    }
    var allowed = TRAIN.options[kind];
    Object.keys(options).forEach(function (name) {
      if (allowed.indexOf(name) < 0) {
        throw integrationError("Invalid " + method + " parameter: " + name + " is not a recognized parameter in " +
          "the " + TRAIN.release + " release of Stripe.js.");
      }
    });
  }

  // Styling through CSSOM (a constructed sheet), so no inline style attributes are written.
  var sheet = new CSSStyleSheet();
  sheet.replaceSync([
    ".sd-payment { display: grid; gap: .75rem; font: inherit; }",
    ".sd-tab { border: 2px solid #0570de; border-radius: 6px; padding: .5rem 1rem; background: #fff; }",
    ".sd-field { display: grid; gap: .25rem; }",
    ".sd-row { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; }",
    ".sd-field input { font: inherit; padding: .6rem; border: 1px solid #ccc; border-radius: 6px; }",
    ".sd-field input[aria-invalid=true] { border-color: #df1b41; }",
    ".sd-error { color: #df1b41; margin: 0; }",
    ".sd-3ds::backdrop { background: rgba(0, 0, 0, .5); }",
    ".sd-3ds { border: 0; border-radius: 8px; padding: 1.5rem; max-width: 420px; }",
    ".sd-3ds button { font: inherit; padding: .6rem 1.2rem; margin-right: .5rem; }"
  ].join("\n"));
  document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }

  function encode(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== undefined && params[k] !== null; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  // One call to Stripe's API: resolves {body} or {error}, never rejects (Stripe.js resolves network errors).
  async function api(method, path, params) {
    state.requests.push(method + " " + path);
    var url = API + path;
    var init = { method: method, headers: {} };
    if (method === "GET") {
      url += "?" + encode(params);
    } else {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = encode(params);
    }
    var response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { error: { type: "api_connection_error", message: CONNECTION } };
    }
    var body = await response.json().catch(function () { return null; });
    if (!response.ok || !body) {
      return { error: (body && body.error) || { type: "api_error", message: "An unknown error occurred." } };
    }
    return { body: body };
  }

  var SECRET = /^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/;

  function intentId(clientSecret, method) {
    var match = typeof clientSecret === "string" && SECRET.exec(clientSecret);
    if (!match) {
      throw integrationError("Invalid value for " + method + ": clientSecret should be a client secret of the " +
        "form ${id}_secret_${secret}. You specified: " + clientSecret + ".");
    }
    return match[1];
  }

  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = +digits[digits.length - 1 - i];
      if (i % 2) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  // ---- The Payment Element: card number, expiry and CVC with labels, rendered into the mount point.

  function PaymentElement(elements, options) {
    this._elements = elements;
    this._options = options || {};
    this._handlers = {};
    this._root = null;
    this._fields = {};
  }

  PaymentElement.prototype.on = function (event, handler) {
    if (typeof handler !== "function") throw integrationError("element.on(): the handler must be a function.");
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };

  PaymentElement.prototype.off = function (event, handler) {
    this._handlers[event] = (this._handlers[event] || []).filter(function (h) { return h !== handler; });
    return this;
  };

  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).slice().forEach(function (h) { h(payload); });
  };

  PaymentElement.prototype._field = function (container, key, label, attrs) {
    var id = "sd-" + key;
    var box = el("div", { "class": "sd-field" });
    box.appendChild(el("label", { "for": id }, label));
    var input = el("input", Object.assign({ id: id, name: key, type: "text", inputmode: "numeric",
      "aria-describedby": id + "-error", spellcheck: "false" }, attrs));
    var error = el("p", { id: id + "-error", "class": "sd-error", role: "alert" });
    error.hidden = true;
    box.appendChild(input);
    box.appendChild(error);
    container.appendChild(box);
    this._fields[key] = { input: input, error: error };
    var self = this;
    input.addEventListener("input", function () {
      self._elements._submitted = false; // what was validated changed
      self._setError(key, "");
      self._emit("change", self._changeEvent());
    });
    input.addEventListener("focus", function () { self._emit("focus", { elementType: "payment" }); });
    input.addEventListener("blur", function () { self._emit("blur", { elementType: "payment" }); });
  };

  PaymentElement.prototype.mount = function (target) {
    if (this._root) {
      throw integrationError("This Element is already mounted. Use `unmount()` to unmount the Element before " +
        "re-mounting.");
    }
    var node = typeof target === "string" ? document.querySelector(target) : target;
    if (!(node instanceof HTMLElement)) {
      throw integrationError("The selector you specified (" + target + ") applies to no DOM elements that are " +
        "currently on the page.");
    }
    this._root = el("div", { "class": "sd-payment", "data-stripe-double": "payment-element" });
    var tabs = el("div", { role: "tablist", "aria-label": "Payment method" });
    tabs.appendChild(el("button", { type: "button", role: "tab", "aria-selected": "true", "class": "sd-tab" },
      "Card"));
    this._root.appendChild(tabs);
    this._field(this._root, "number", "Card number",
      { autocomplete: "cc-number", placeholder: "1234 1234 1234 1234", maxlength: "23" });
    var row = el("div", { "class": "sd-row" });
    this._field(row, "expiry", "Expiration date", { autocomplete: "cc-exp", placeholder: "MM / YY", maxlength: "7" });
    this._field(row, "cvc", "Security code", { autocomplete: "cc-csc", placeholder: "CVC", maxlength: "4" });
    this._root.appendChild(row);
    node.replaceChildren(this._root);

    // Like Stripe.js, loading the element asks Stripe for an elements session with the publishable key;
    // a key Stripe refuses ends in `loaderror`, not `ready`.
    var self = this;
    var opts = this._elements._options;
    var params = { key: this._elements._stripe._key, type: "deferred_intent",
      "deferred_intent[mode]": opts.mode, "deferred_intent[amount]": opts.amount,
      "deferred_intent[currency]": opts.currency };
    (opts.allowedPaymentMethodTypes || []).forEach(function (t, i) {
      params["deferred_intent[allowed_payment_method_types][" + i + "]"] = t;
    });
    api("GET", "/elements/sessions", params).then(function (result) {
      if (!self._root) return;
      if (result.error) self._emit("loaderror", { elementType: "payment", error: result.error });
      else self._emit("ready", { elementType: "payment" });
    });
  };

  PaymentElement.prototype.unmount = function () {
    if (this._root) this._root.remove();
    this._root = null;
    this._fields = {};
  };

  PaymentElement.prototype.destroy = function () {
    this.unmount();
    this._elements._payment = null;
  };

  PaymentElement.prototype.update = function (options) {
    record("paymentElement.update", options);
    checkNames(options, "paymentElementUpdate", "paymentElement.update()");
    Object.assign(this._options, options || {});
  };

  PaymentElement.prototype.focus = function () {
    if (this._fields.number) this._fields.number.input.focus();
  };

  PaymentElement.prototype._values = function () {
    var f = this._fields;
    return { number: f.number.input.value.replace(/[\s-]/g, ""), expiry: f.expiry.input.value.replace(/\s/g, ""),
      cvc: f.cvc.input.value.trim() };
  };

  PaymentElement.prototype._changeEvent = function () {
    var v = this._values();
    return { elementType: "payment", collapsed: false, empty: !(v.number || v.expiry || v.cvc),
      complete: this._validate(false) === null, value: { type: "card" } };
  };

  PaymentElement.prototype._setError = function (key, message) {
    var field = this._fields[key];
    field.error.textContent = message;
    field.error.hidden = !message;
    field.input.setAttribute("aria-invalid", message ? "true" : "false");
  };

  // The first problem as Stripe words it ({key, code, message}), or null; `show` marks the field.
  PaymentElement.prototype._validate = function (show) {
    var v = this._values();
    var problems = [];
    if (!v.number) problems.push(["number", "incomplete_number", "Your card number is incomplete."]);
    else if (!/^\d+$/.test(v.number) || !luhn(v.number)) problems.push(["number", "invalid_number", "Your card number is invalid."]);
    else if (v.number.length < 16) problems.push(["number", "incomplete_number", "Your card number is incomplete."]);
    var exp = /^(\d{2})\/?(\d{2})$/.exec(v.expiry);
    if (!exp) {
      problems.push(["expiry", "incomplete_expiry", "Your card's expiration date is incomplete."]);
    } else {
      var month = +exp[1], year = 2000 + +exp[2], now = new Date();
      if (month < 1 || month > 12) problems.push(["expiry", "invalid_expiry_month", "Your card's expiration date is invalid."]);
      else if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
        problems.push(["expiry", "invalid_expiry_year_past", "Your card's expiration year is in the past."]);
      }
    }
    if (!/^\d{3,4}$/.test(v.cvc)) problems.push(["cvc", "incomplete_cvc", "Your card's security code is incomplete."]);
    if (show) {
      var self = this;
      ["number", "expiry", "cvc"].forEach(function (key) {
        var hit = problems.filter(function (p) { return p[0] === key; })[0];
        self._setError(key, hit ? hit[2] : "");
      });
    }
    return problems.length ? { key: problems[0][0], code: problems[0][1], message: problems[0][2] } : null;
  };

  PaymentElement.prototype._paymentMethodData = function () {
    var v = this._values();
    var exp = /^(\d{2})\/?(\d{2})$/.exec(v.expiry);
    return { "payment_method_data[type]": "card", "payment_method_data[card][number]": v.number,
      "payment_method_data[card][exp_month]": +exp[1], "payment_method_data[card][exp_year]": +exp[2],
      "payment_method_data[card][cvc]": v.cvc };
  };

  // ---- Elements in deferred mode ("Elements without an Intent").

  var MODES = ["payment", "setup", "subscription"];

  function checkElementsOptions(options, method) {
    if ("mode" in options && MODES.indexOf(options.mode) < 0) {
      throw integrationError("Invalid value for " + method + ": mode should be one of " + MODES.join(", ") + ".");
    }
    if ("amount" in options && !(Number.isInteger(options.amount) && options.amount >= 0)) {
      throw integrationError("Invalid value for " + method + ": amount should be a non-negative integer in the " +
        "currency's smallest unit. You specified: " + options.amount + ".");
    }
    if ("currency" in options && !/^[a-z]{3}$/.test(options.currency)) {
      throw integrationError("Invalid value for " + method + ": currency should be a lowercase three-letter ISO " +
        "code. You specified: " + options.currency + ".");
    }
    if ("allowedPaymentMethodTypes" in options && !(Array.isArray(options.allowedPaymentMethodTypes) &&
        options.allowedPaymentMethodTypes.length && options.allowedPaymentMethodTypes.every(function (t) {
          return typeof t === "string";
        }))) {
      throw integrationError("Invalid value for " + method + ": allowedPaymentMethodTypes should be a non-empty " +
        "array of payment method types.");
    }
  }

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options;
    this._payment = null;
    this._submitted = false;
    this._submitting = false;
  }

  Elements.prototype.create = function (type, options) {
    record("elements.create:" + type, options);
    if (type !== "payment") throw integrationError("This test double only implements the `payment` Element.");
    if (this._payment) throw integrationError("Can only create one Element of type payment.");
    checkNames(options, "paymentElement", "elements.create('payment')");
    this._payment = new PaymentElement(this, options);
    return this._payment;
  };

  Elements.prototype.getElement = function (type) {
    return type === "payment" ? this._payment : null;
  };

  Elements.prototype.update = function (options) {
    record("elements.update", options);
    if (!options || typeof options !== "object") throw integrationError("elements.update(): expected an object.");
    checkNames(options, "elementsUpdate", "elements.update()");
    checkElementsOptions(options, "elements.update()");
    Object.assign(this._options, options);
  };

  Elements.prototype.submit = function () {
    var element = this._payment;
    if (!element || !element._root) {
      throw integrationError("elements.submit(): a mounted Payment Element is required.");
    }
    var self = this;
    this._submitting = true;
    this._submitted = false;
    return new Promise(function (resolve) {
      setTimeout(function () {
        self._submitting = false;
        var problem = element._validate(true);
        if (problem) {
          element._fields[problem.key].input.focus();
          resolve({ error: { type: "validation_error", code: problem.code, message: problem.message } });
          return;
        }
        self._submitted = true;
        resolve({});
      }, 0);
    });
  };

  // ---- 3-D Secure: a modal like Stripe's test challenge page, with Complete and Fail.

  function challenge(intent) {
    return new Promise(function (resolve) {
      var dialog = el("dialog", { "class": "sd-3ds", "aria-labelledby": "sd-3ds-title",
        "data-stripe-double": "3ds" });
      dialog.appendChild(el("h2", { id: "sd-3ds-title" }, "3D Secure 2 Test Page"));
      dialog.appendChild(el("p", {}, "This is a test double of the bank's authentication page. Complete or fail " +
        "the authentication of this payment."));
      var complete = el("button", { type: "button" }, "Complete");
      var fail = el("button", { type: "button" }, "Fail");
      dialog.appendChild(complete);
      dialog.appendChild(fail);
      document.body.appendChild(dialog);
      function done(success) {
        dialog.close();
        dialog.remove();
        resolve(success);
      }
      complete.addEventListener("click", function () { done(true); });
      fail.addEventListener("click", function () { done(false); });
      dialog.addEventListener("cancel", function (event) { event.preventDefault(); done(false); });
      dialog.showModal();
    });
  }

  // ---- Stripe(publishableKey)

  function Stripe(key) {
    if (!(this instanceof Stripe)) return new Stripe(key);
    if (typeof key !== "string" || !key) {
      throw integrationError("Please call Stripe() with your publishable key. You used an empty string.");
    }
    if (/^(sk|rk)_/.test(key)) {
      throw integrationError("You should not use your secret key with Stripe.js. Please pass a publishable key " +
        "instead.");
    }
    if (!/^pk_(test|live)_/.test(key)) throw integrationError("Invalid API Key provided: " + key);
    this._key = key;
    this._elements = [];
    this._confirming = {};
  }

  Stripe.prototype.elements = function (options) {
    record("elements", options);
    options = Object.assign({}, options || {});
    checkNames(options, "elements", "elements()");
    if (options.clientSecret) throw integrationError("This test double only implements Elements without an Intent.");
    if (!options.mode) throw integrationError("elements(): `mode` is required when no clientSecret is given.");
    if (options.mode === "payment" && !("amount" in options)) {
      throw integrationError("elements(): `amount` is required in payment mode.");
    }
    if (!options.currency) throw integrationError("elements(): `currency` is required when no clientSecret is given.");
    checkElementsOptions(options, "elements()");
    var elements = new Elements(this, options);
    this._elements.push(elements);
    return elements;
  };

  Stripe.prototype._publicIntent = function (id, clientSecret) {
    return api("GET", "/payment_intents/" + id, { key: this._key, client_secret: clientSecret });
  };

  Stripe.prototype.retrievePaymentIntent = function (clientSecret) {
    var id = intentId(clientSecret, "stripe.retrievePaymentIntent()");
    return this._publicIntent(id, clientSecret).then(function (result) {
      return result.error ? { error: result.error } : { paymentIntent: result.body };
    });
  };

  Stripe.prototype.confirmPayment = function (options) {
    record("confirmPayment", options);
    if (!options || typeof options !== "object") {
      throw integrationError("stripe.confirmPayment(): expected an options object.");
    }
    checkNames(options, "confirmPayment", "stripe.confirmPayment()");
    checkNames(options.confirmParams, "confirmParams", "stripe.confirmPayment() confirmParams");
    var elements = options.elements;
    if (!(elements instanceof Elements) || this._elements.indexOf(elements) < 0) {
      throw integrationError("stripe.confirmPayment(): `elements` must be the Elements instance created by this " +
        "Stripe object.");
    }
    var clientSecret = options.clientSecret;
    if (!clientSecret) {
      throw integrationError("stripe.confirmPayment(): the `clientSecret` parameter is required when the " +
        "Elements instance was created without a clientSecret.");
    }
    var id = intentId(clientSecret, "stripe.confirmPayment()");
    var params = options.confirmParams || {};
    var returnUrl = params.return_url;
    var redirect = options.redirect || "always";
    if (redirect !== "always" && redirect !== "if_required") {
      throw integrationError("Invalid value for stripe.confirmPayment(): redirect should be one of always, " +
        "if_required. You specified: " + redirect + ".");
    }
    if (typeof returnUrl !== "string" || !/^https?:\/\//.test(returnUrl)) {
      throw integrationError("stripe.confirmPayment(): the `confirmParams.return_url` argument is required and " +
        "must be an absolute URL.");
    }
    if (elements._submitting || !elements._submitted) {
      throw integrationError("elements.submit() must be called before stripe.confirmPayment(). Call " +
        "elements.submit() as soon as your customer presses pay, prior to any asynchronous work.");
    }
    if (!elements._payment || !elements._payment._root) {
      throw integrationError("stripe.confirmPayment(): the Payment Element is not mounted.");
    }
    elements._submitted = false; // each confirmation needs its own submit
    var data = elements._payment._paymentMethodData();
    var stripe = this;
    return (async function () {
      var result = await api("POST", "/payment_intents/" + id + "/confirm", Object.assign({
        key: stripe._key, client_secret: clientSecret, return_url: returnUrl, use_stripe_sdk: "true",
        expected_payment_method_type: "card"
      }, data));
      if (result.error) return { error: result.error };
      var intent = result.body;
      if (intent.status === "requires_action" && intent.next_action && intent.next_action.type === "use_stripe_sdk") {
        var success = await challenge(intent);
        // Stand-in for the issuer's challenge page: localstripe's own route, publishable key plus client secret.
        var auth = await api("POST", "/payment_intents/" + id + "/_authenticate?success=" + success,
          { key: stripe._key, client_secret: clientSecret });
        if (auth.error) return { error: auth.error };
        var after = await stripe._publicIntent(id, clientSecret);
        if (after.error) return { error: after.error };
        intent = after.body;
        if (intent.status === "requires_payment_method") {
          var last = intent.last_payment_error || {};
          return { error: { type: "invalid_request_error", code: last.code || "payment_intent_authentication_failure",
            message: AUTH_FAILED, payment_intent: intent } };
        }
      }
      if (redirect === "always") {
        var sep = returnUrl.indexOf("?") < 0 ? "?" : "&";
        window.location.assign(returnUrl + sep + encode({ payment_intent: intent.id,
          payment_intent_client_secret: clientSecret, redirect_status: intent.status }));
        return new Promise(function () {}); // the page is leaving
      }
      return { paymentIntent: intent };
    })();
  };

  window.Stripe = Stripe;
})();
