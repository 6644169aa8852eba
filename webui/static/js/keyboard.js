// The on-screen keyboard: a kiosk with only a touch screen still needs to type a search, an email, or (staff) a
// Stripe key of about 100 characters. It opens when a text field is tapped, or from the keyboard button beside
// it; its keys type at the field's caret without taking the focus away. While it is open the page gets room below
// (padding as tall as the keyboard) and the field is scrolled above it, so the keyboard never covers what is typed.
// A physical keyboard and a paste keep working throughout; the preview line follows them too.
(function () {
  "use strict";
  var panel = document.getElementById("osk");
  if (!panel) return;
  var text = JSON.parse(document.getElementById("osk-text").textContent);
  var FIELDS = "input:not([type]), input[type=text], input[type=search], input[type=email], input[type=password]," +
               " input[type=url], input[type=tel], textarea";
  var GAP = 16;  // px kept between the field and the keyboard's top edge
  var field = null;
  var shift = 0;  // 0 small letters, 1 the next letter capital, 2 capitals until tapped again
  var preview = {
    label: panel.querySelector(".osk-label"), before: panel.querySelector(".osk-before"),
    after: panel.querySelector(".osk-after")
  };
  var enterKey = panel.querySelector('[data-action="enter"]');
  var shiftKey = panel.querySelector('[data-action="shift"]');

  function setExpanded(open) {
    document.querySelectorAll(".osk-toggle").forEach(function (toggle) {
      toggle.setAttribute("aria-expanded", String(open));
      toggle.setAttribute("aria-label", open ? text.hide : text.show);
    });
  }

  function caret() {
    // Email fields have no caret API (selectionStart is null): they are typed at the end.
    try {
      if (field.selectionStart !== null) return [field.selectionStart, field.selectionEnd];
    } catch (err) { /* an input type without a selection */ }
    return null;
  }

  function labelOf(input) {
    var label = input.labels && input.labels[0];
    return (label ? label.textContent : input.getAttribute("aria-label") || input.placeholder || "").trim();
  }

  function showPreview() {
    if (!field) return;
    var value = field.type === "password" ? field.value.replace(/./g, "•") : field.value;
    var at = caret() || [value.length, value.length];
    preview.label.textContent = labelOf(field);
    preview.before.textContent = value.slice(0, at[0]);
    preview.after.textContent = value.slice(at[0]);
  }

  // The page's sticky header stays on the glass while the page scrolls: a field must clear it too.
  function headerBottom() {
    var bottom = 0;
    document.querySelectorAll("body > header, body > .top").forEach(function (el) {
      var s = getComputedStyle(el);
      if (s.position === "sticky" || s.position === "fixed") bottom = Math.max(bottom, el.getBoundingClientRect().bottom);
    });
    return bottom;
  }

  function makeRoom() {
    if (panel.hidden) return;
    var keyboardTop = panel.getBoundingClientRect().top;
    document.body.style.paddingBottom = panel.offsetHeight + "px";
    if (!field) return;
    var r = field.getBoundingClientRect(), top = headerBottom();
    var results = field.hasAttribute("data-live-search") && document.getElementById("results");
    if (results && r.bottom <= top + 1) {
      // Searching from the header: bring the live results up under it, above the keyboard.
      var first = results.querySelector(".card") || results;
      window.scrollBy(0, first.getBoundingClientRect().top - top - GAP / 2);
    } else if (r.bottom > keyboardTop - GAP) {
      window.scrollBy(0, Math.min(r.bottom - keyboardTop + GAP, r.top - top - GAP));
    } else if (r.top < top) {
      window.scrollBy(0, r.top - top - GAP);
    }
  }

  function setShift(state) {
    shift = state;
    panel.classList.toggle("osk-shift", shift > 0);
    shiftKey.setAttribute("aria-pressed", String(shift > 0));
    shiftKey.setAttribute("aria-label", shift === 2 ? text.caps : text.shift);
    panel.querySelectorAll("[data-key]").forEach(function (key) {
      var k = key.dataset.key;
      if (/^[a-z]$/.test(k)) key.textContent = shift ? k.toUpperCase() : k;
    });
  }

  function textFields(form) {
    return Array.prototype.filter.call(form ? form.querySelectorAll(FIELDS) : [], function (el) {
      return !el.disabled && !el.readOnly && el.offsetParent !== null;
    });
  }

  function open(target) {
    field = target;
    panel.hidden = false;
    document.body.classList.add("osk-open");
    // Digits only (a PIN, a count): the letter rows step aside and the keyboard is smaller.
    panel.classList.toggle("osk-digits", field.getAttribute("inputmode") === "numeric");
    // In a form of several fields, Enter goes to the next one; in the last (or only) field it submits.
    var fields = textFields(field.form);
    enterKey.textContent = fields.indexOf(field) < fields.length - 1 ? text.next : text.go;
    setExpanded(true);
    showPreview();
    window.requestAnimationFrame(makeRoom);
  }

  function close() {
    panel.hidden = true;
    document.body.classList.remove("osk-open");
    document.body.style.paddingBottom = "";
    setShift(0);
    setExpanded(false);
  }

  function changed() {
    field.dispatchEvent(new Event("input", { bubbles: true }));
    showPreview();
  }

  function type(chars) {
    if (shift) chars = chars.toUpperCase();
    var at = caret();
    if (field.maxLength > 0 && field.value.length - (at ? at[1] - at[0] : 0) >= field.maxLength) return;
    if (at) field.setRangeText(chars, at[0], at[1], "end");
    else field.value += chars;
    if (shift === 1) setShift(0);
    changed();
  }

  function backspace() {
    var at = caret();
    if (!at) field.value = field.value.slice(0, -1);
    else if (at[1] > at[0]) field.setRangeText("", at[0], at[1], "end");
    else if (at[0] > 0) field.setRangeText("", at[0] - 1, at[0], "end");
    changed();
  }

  function move(by) {
    var at = caret();
    if (!at) return;
    var to = Math.max(0, Math.min(field.value.length, (by < 0 ? at[0] : at[1]) + (at[0] === at[1] ? by : 0)));
    field.setSelectionRange(to, to);
    showPreview();
  }

  function enter() {
    var fields = textFields(field.form);
    var next = fields[fields.indexOf(field) + 1];
    if (next) {
      next.focus({ preventScroll: true });
      open(next);
    } else if (field.form) {
      field.form.requestSubmit();
    }
  }

  var actions = {
    backspace: backspace,
    clear: function () { field.value = ""; changed(); },
    enter: enter,
    close: close,
    left: function () { move(-1); },
    right: function () { move(1); },
    shift: function () { setShift((shift + 1) % 3); }
  };

  // On the click, not the pointerdown: the field has the focus by then, and scrolling it earlier would move it
  // from under the finger before the tap lands.
  document.addEventListener("click", function (event) {
    var input = event.target.closest && event.target.closest(FIELDS);
    if (input && !panel.contains(input) && !input.readOnly) open(input);
  });
  document.addEventListener("focusin", function (event) {
    // Tab or a label's tap moves to another field while the keyboard is open: it types there now.
    if (!panel.hidden && event.target.matches(FIELDS) && event.target !== field) open(event.target);
  });
  document.addEventListener("input", function (event) { if (event.target === field) showPreview(); });
  document.addEventListener("selectionchange", function () { if (!panel.hidden) showPreview(); });
  window.addEventListener("resize", function () { window.requestAnimationFrame(makeRoom); });
  document.addEventListener("kiosk:results", function () { window.requestAnimationFrame(makeRoom); });
  document.querySelectorAll(".osk-toggle").forEach(function (toggle) {
    toggle.addEventListener("click", function () {
      if (!panel.hidden) { close(); return; }
      var input = toggle.form && (toggle.form.querySelector("input[data-osk]") || textFields(toggle.form)[0]);
      if (!input) return;
      open(input);
      input.focus({ preventScroll: true });
    });
  });

  // Keys never take the focus (the caret stays in the field); clicks work by touch, mouse or pen.
  panel.addEventListener("mousedown", function (event) { event.preventDefault(); });
  panel.addEventListener("click", function (event) {
    var key = event.target.closest(".osk-key");
    if (!key || !field) return;
    if (key.dataset.action) actions[key.dataset.action]();
    else type(key.dataset.key);
  });
})();
