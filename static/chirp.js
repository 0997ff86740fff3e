// Toasts remove themselves once their fade-out animation ends.
document.addEventListener("animationend", (event) => {
  if (event.target.classList && event.target.classList.contains("toast") && event.animationName === "toast-out") {
    event.target.remove();
  }
});

// Live events arrive at least once: drop a toast that repeats one already shown.
document.addEventListener("htmx:afterSwap", (event) => {
  const box = event.detail.target;
  if (!box || box.id !== "toasts") return;
  const seen = new Set();
  for (const toast of Array.from(box.querySelectorAll("[data-toast-key]"))) {
    const key = toast.dataset.toastKey;
    if (seen.has(key)) toast.remove();
    seen.add(key);
  }
});
