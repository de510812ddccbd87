// Reloads the status page every minute while it is visible, and at once when it becomes
// visible again after a minute or more in the background. Without it the page simply stays
// as loaded; nothing else depends on it.
"use strict";
(function () {
  var PERIOD_MS = 60000;
  var loadedAt = Date.now();
  function reloadIfDue() {
    if (document.visibilityState === "visible" && Date.now() - loadedAt >= PERIOD_MS) {
      location.reload();
    }
  }
  setInterval(reloadIfDue, 5000);
  document.addEventListener("visibilitychange", reloadIfDue);
})();
