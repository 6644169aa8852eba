// The way into the staff area (Ctrl+Alt+S from any page), its PIN keypad, and its 5-minute idle lock.
(function () {
  "use strict";
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey && e.altKey && (e.key === "s" || e.key === "S" || e.code === "KeyS")) {
      e.preventDefault();
      window.location.assign("/staff/");
    }
  });

  // Print buttons (the day's report, on the receipt roll).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  // On-screen digits for a touch screen with no keyboard.
  document.querySelectorAll("[data-keypad-for]").forEach(function (pad) {
    var input = document.getElementById(pad.getAttribute("data-keypad-for"));
    if (!input) return;
    pad.hidden = false;
    pad.addEventListener("click", function (e) {
      var key = e.target.closest("button") && e.target.closest("button").getAttribute("data-key");
      if (!key) return;
      if (key === "clear") input.value = "";
      else if (key === "back") input.value = input.value.slice(0, -1);
      else if (input.value.length < 64) input.value += key;
      input.focus();
    });
  });

  // Signed in: lock after 5 minutes without a touch, so the screen never stays open behind staff.
  var idle = parseInt(document.body.getAttribute("data-staff-idle") || "0", 10);
  var lockForm = document.getElementById("staff-lock-form");
  if (idle > 0 && lockForm) {
    var timer = null;
    var arm = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { lockForm.submit(); }, idle * 1000);
    };
    ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
      document.addEventListener(name, arm, { passive: true });
    });
    arm();
  }
})();
