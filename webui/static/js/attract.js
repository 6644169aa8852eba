// The attract screen: "back" stays on it, since the entry before it belonged to the last customer.
// Loaded in <head> without defer, so the trap is set before the screen shows: a "back" pressed (or sent by
// a test) the moment the screen appears finds it in place already.
(function () {
  "use strict";
  history.replaceState({ attract: true }, "");
  history.pushState({ attract: true }, "");
  window.addEventListener("popstate", function () { history.pushState({ attract: true }, ""); });
})();
