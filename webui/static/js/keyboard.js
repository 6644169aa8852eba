// The on-screen keyboard: a kiosk with only a touch screen still needs to type a search or an email.
// It opens when a field marked data-osk is tapped, or from the keyboard button beside it; its keys type
// into that field without taking the focus away. A physical keyboard keeps working throughout.
(function () {
  "use strict";
  var panel = document.getElementById("osk");
  if (!panel) return;
  var text = window.kiosk.text;
  var field = null;

  function setExpanded(open) {
    document.querySelectorAll(".osk-toggle").forEach(function (toggle) {
      toggle.setAttribute("aria-expanded", String(open));
      toggle.setAttribute("aria-label", open ? text.keyboardHide : text.keyboardShow);
    });
  }

  function open(target) {
    field = target;
    panel.hidden = false;
    document.body.classList.add("osk-open");
    setExpanded(true);
  }

  function close() {
    panel.hidden = true;
    document.body.classList.remove("osk-open");
    setExpanded(false);
  }

  function changed() {
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function type(chars) {
    // Email fields have no caret API (selectionStart is null): they are typed at the end.
    try {
      field.setRangeText(chars, field.selectionStart, field.selectionEnd, "end");
    } catch (err) {
      field.value += chars;
    }
    changed();
  }

  function backspace() {
    var start = null;
    try { start = field.selectionStart; } catch (err) { /* email field */ }
    if (start === null) {
      field.value = field.value.slice(0, -1);
    } else if (field.selectionEnd > start) {
      field.setRangeText("", start, field.selectionEnd, "end");
    } else if (start > 0) {
      field.setRangeText("", start - 1, start, "end");
    }
    changed();
  }

  var actions = {
    backspace: backspace,
    clear: function () { field.value = ""; changed(); },
    enter: function () { if (field.form) field.form.requestSubmit(); },
    close: close
  };

  document.querySelectorAll("input[data-osk]").forEach(function (input) {
    input.addEventListener("pointerdown", function () { open(input); });
  });
  document.querySelectorAll(".osk-toggle").forEach(function (toggle) {
    toggle.addEventListener("click", function () {
      if (!panel.hidden) { close(); return; }
      var input = toggle.form && toggle.form.querySelector("input[data-osk]");
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
