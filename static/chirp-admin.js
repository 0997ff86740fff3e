// Chirp's admin: a page marked data-refresh-seconds (the live lanes) reloads itself, while
// it is in view (a hidden tab waits until it is shown again).
(function () {
  "use strict";
  const marked = document.querySelector("[data-refresh-seconds]");
  if (!marked) return;
  const seconds = Number(marked.dataset.refreshSeconds) || 5;
  setInterval(function () {
    if (!document.hidden) window.location.reload();
  }, seconds * 1000);
})();
