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

  // Show a key field's characters (a 100-character key typed by touch is checked before saving), and back.
  document.querySelectorAll("[data-reveal]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-reveal"));
    if (!input) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var shown = input.type === "password";
      var at = [input.selectionStart, input.selectionEnd];
      input.type = shown ? "text" : "password";
      button.setAttribute("aria-pressed", String(shown));
      input.focus();
      if (at[0] !== null) input.setSelectionRange(at[0], at[1]);
      input.dispatchEvent(new Event("input", { bubbles: true }));  // the on-screen keyboard's preview follows
    });
  });

  // Tables of rows (the tax classes): add a row (a blank copy of the last) and remove one. Without JS the page
  // already offers empty rows, which the server ignores.
  document.querySelectorAll("[data-rows]").forEach(function (table) {
    var add = table.querySelector("[data-add-row]");
    var count = table.querySelectorAll("[data-row]").length;
    function wire(row) {
      var remove = row.querySelector("[data-remove-row]");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        var rows = table.querySelectorAll("[data-row]");
        if (rows.length > 1) {
          var next = row.nextElementSibling && row.nextElementSibling.querySelector("input");
          row.remove();
          if (next) next.focus();
        } else {
          row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
        }
      });
    }
    table.querySelectorAll("[data-row]").forEach(wire);
    add.hidden = false;
    add.addEventListener("click", function () {
      var rows = table.querySelectorAll("[data-row]");
      var row = rows[rows.length - 1].cloneNode(true);
      count += 1;
      row.querySelectorAll("input").forEach(function (input) {
        var id = input.id.replace(/-\d+$/, "-" + count);
        row.querySelector('label[for="' + input.id + '"]').setAttribute("for", id);
        input.id = id;
        input.value = "";
      });
      add.parentNode.insertBefore(row, add);
      wire(row);
      row.querySelector("input").focus();
    });
  });

  // A save into the data folder that takes a while (a year of orders): its progress, asked every second until it
  // has ended, in the words the server chose.
  document.querySelectorAll("[data-export-job]").forEach(function (line) {
    var url = line.getAttribute("data-export-job");
    var ask = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (reply) { return reply.ok && !reply.redirected ? reply.json() : null; })
        .then(function (job) {
          if (!job) return;  // forgotten (the kiosk restarted), or the staff area locked itself
          line.textContent = job.message;
          line.className = "flash " + job.kind + " export-progress";
          if (job.state === "running") setTimeout(ask, 1000);
        })
        .catch(function () { setTimeout(ask, 1000); });  // the kiosk did not answer: ask again
    };
    if (line.getAttribute("data-state") === "running") setTimeout(ask, 1000);
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
