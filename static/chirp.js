// Toasts remove themselves once their fade-out animation ends.
document.addEventListener("animationend", (event) => {
  if (event.target.classList && event.target.classList.contains("toast") && event.animationName === "toast-out") {
    event.target.remove();
  }
});
