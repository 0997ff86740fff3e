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

// Lists that take new rows at the top ([data-live-list], e.g. a user's jobs on their first
// page): a row this page shows already (it was rendered with the page, or the event came
// twice) is not added again; past the page size the oldest row leaves, as it would on reload.
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  if (!event.target.hasAttribute("data-live-list")) return;
  const fragment = document.createElement("template");
  fragment.innerHTML = event.detail.data;
  const ids = Array.from(fragment.content.querySelectorAll("[id]"), (row) => row.id);
  if (ids.length && ids.every((id) => document.getElementById(id))) event.preventDefault();
});
document.addEventListener("htmx:sseMessage", (event) => {
  const list = event.target;
  if (!list.hasAttribute || !list.hasAttribute("data-live-list")) return;
  list.querySelectorAll(":scope > .empty").forEach((row) => row.remove());
  const size = parseInt(list.dataset.pageSize || "0", 10);
  const rows = list.querySelectorAll(":scope > [id]");
  for (let i = size; size && i < rows.length; i++) rows[i].remove();
});
// A button with data-confirm asks before it submits its form (the gallery's "Delete").
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// A transcript's or chapter's timestamp seeks the video stored in Chirp when the page plays one
// ([data-player]); without a player it stays a plain link to that moment on YouTube.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.timestamp[data-seconds]");
  const player = link && document.querySelector("[data-player]");
  if (!player || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  player.currentTime = parseFloat(link.dataset.seconds);
  player.play().catch(() => {}); // autoplay refused: the position is set, the user presses play
});

// Gallery lightbox. A tile opens its image in place; the URL carries the state (?open=<id>,
// &boxes=0 when the face boxes are hidden) so a reload or the back button shows the same thing.
// The figure comes from the image's own page, so the boxes are drawn by one template.
(() => {
  const lightbox = document.getElementById("lightbox");
  const tiles = document.getElementById("gallery-tiles");
  if (!lightbox || !tiles) return;
  const figure = lightbox.querySelector(".lightbox-figure");
  const title = lightbox.querySelector(".lightbox-title");
  const boxesButton = lightbox.querySelector("[data-lightbox='boxes']");
  const links = () => Array.from(tiles.querySelectorAll("a[data-image-id]"));
  let loading = 0;

  function stateFromUrl() {
    const params = new URLSearchParams(window.location.search);
    const open = params.get("open");
    return { open: /^\d+$/.test(open || "") ? open : null, boxes: params.get("boxes") !== "0" };
  }

  function urlFor(state) {
    const url = new URL(window.location.href);
    url.searchParams.delete("open");
    url.searchParams.delete("boxes");
    if (state.open) {
      url.searchParams.set("open", state.open);
      if (!state.boxes) url.searchParams.set("boxes", "0");
    }
    return url.pathname + url.search;
  }

  function go(state) {
    const next = urlFor(state);
    if (next !== window.location.pathname + window.location.search) history.pushState(null, "", next);
    show(state);
  }

  async function show(state) {
    lightbox.classList.toggle("boxes-hidden", !state.boxes);
    boxesButton.setAttribute("aria-pressed", String(state.boxes));
    if (!state.open) {
      if (lightbox.open) lightbox.close();
      return;
    }
    const link = links().find((a) => a.dataset.imageId === state.open);
    // An image not on this page of the gallery (an old link) still opens: by its own URL.
    const href = link ? link.getAttribute("href") : tiles.dataset.imageUrl.replace("/0/", `/${state.open}/`);
    if (lightbox.dataset.imageId !== state.open) {
      const mine = ++loading;
      const response = await fetch(href, { headers: { Accept: "text/html" } });
      if (mine !== loading) return; // a later move won
      if (!response.ok) {
        history.replaceState(null, "", urlFor({ open: null, boxes: true }));
        if (lightbox.open) lightbox.close();
        return;
      }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const picture = page.querySelector(".review-figure");
      const heading = page.querySelector("h1");
      figure.replaceChildren(...(picture ? [document.importNode(picture, true)] : []));
      title.textContent = heading ? heading.textContent.replace(/\s+/g, " ").trim() : "Image";
      title.href = href;
      lightbox.dataset.imageId = state.open;
    }
    if (!lightbox.open) lightbox.showModal();
  }

  function move(step) {
    const all = links();
    const at = all.findIndex((a) => a.dataset.imageId === stateFromUrl().open);
    const next = all[at + step];
    if (at >= 0 && next) go({ ...stateFromUrl(), open: next.dataset.imageId });
  }

  tiles.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-image-id]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    go({ ...stateFromUrl(), open: link.dataset.imageId });
  });
  lightbox.addEventListener("click", (event) => {
    const action = event.target.closest("[data-lightbox]");
    if (!action) return;
    const state = stateFromUrl();
    if (action.dataset.lightbox === "prev") move(-1);
    if (action.dataset.lightbox === "next") move(1);
    if (action.dataset.lightbox === "boxes") go({ ...state, boxes: !state.boxes });
    if (action.dataset.lightbox === "close") lightbox.close();
  });
  // Esc closes the dialog natively; however it closed, the URL follows.
  lightbox.addEventListener("close", () => {
    if (stateFromUrl().open) go({ open: null, boxes: true });
  });
  document.addEventListener("keydown", (event) => {
    if (!lightbox.open || event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "ArrowLeft") move(-1);
    else if (event.key === "ArrowRight") move(1);
    else if (event.key === "f") {
      const state = stateFromUrl();
      go({ ...state, boxes: !state.boxes });
    } else return;
    event.preventDefault();
  });
  window.addEventListener("popstate", () => show(stateFromUrl()));
  show(stateFromUrl());
})();
