// Shop-wide behaviour: search as you type, quantity selects that apply themselves.
(function () {
  "use strict";
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
          })
          .catch(function () { /* browsing goes on; the Search button still works */ });
      }, 150);
    });
  }
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  document.documentElement.classList.add("js");
})();
