// Toasts remove themselves once their fade-out animation ends.
document.addEventListener("animationend", (event) => {
  if (event.target.classList && event.target.classList.contains("toast") && event.animationName === "toast-out") {
    event.target.remove();
  }
});

// Live events arrive at least once (a reconnecting stream replays from its last id): a toast
// whose key this page has shown already is dropped before htmx swaps it in. The check is on
// the toast's own key, in the event's data: SSE swaps carry no request target to go by.
const toastsShown = new Set();
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  if (event.target.id !== "toasts") return;
  const fragment = document.createElement("template");
  fragment.innerHTML = event.detail.data;
  const keys = Array.from(fragment.content.querySelectorAll("[data-toast-key]"), (toast) => toast.dataset.toastKey);
  if (keys.length && keys.every((key) => toastsShown.has(key))) {
    event.preventDefault();
    return;
  }
  keys.forEach((key) => toastsShown.add(key));
});

// When the server was away, the SSE extension opens a new stream, which (unlike the browser's
// own reconnection) sends no Last-Event-ID: carry the last id seen in the URL instead, so the
// stream starts where the old one stopped.
let lastEventId = null;
document.addEventListener("htmx:sseMessage", (event) => {
  if (event.detail && event.detail.lastEventId) lastEventId = event.detail.lastEventId;
});
document.addEventListener("htmx:sseError", () => {
  const live = document.getElementById("live");
  if (!live || !lastEventId) return;
  const url = new URL(live.getAttribute("sse-connect"), window.location.href);
  url.searchParams.set("lastEventId", lastEventId);
  live.setAttribute("sse-connect", url.pathname + url.search);
});

// The server could not replay everything this page missed (it keeps a user's newest events
// only): the page is out of date, so reload it; while someone is typing, offer it instead.
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  if (event.target.id !== "stream-reset") return;
  event.preventDefault();
  const typing = document.activeElement && document.activeElement.closest("form");
  if (!typing) {
    window.location.reload();
    return;
  }
  const toasts = document.getElementById("toasts");
  if (!toasts || toasts.querySelector("[data-toast-key='stream-reset']")) return;
  const note = document.createElement("div");
  note.className = "toast toast-warning";
  note.style.animation = "toast-in .2s ease"; // stays until the page is reloaded
  note.dataset.toastKey = "stream-reset";
  note.setAttribute("role", "status");
  note.textContent = "Some live updates were missed. ";
  const reload = document.createElement("button");
  reload.type = "button";
  reload.textContent = "Reload";
  reload.addEventListener("click", () => window.location.reload());
  note.append(reload);
  toasts.append(note);
});

// A button with data-confirm asks before it submits its form (the gallery's "Delete").
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
