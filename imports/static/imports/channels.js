// "Add channel" opens its dialog; without JavaScript the same link opens the form as a page.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog]");
  if (!opener) return;
  const dialog = document.getElementById(opener.dataset.dialog);
  if (!dialog || typeof dialog.showModal !== "function") return;
  event.preventDefault();
  dialog.showModal();
  const input = dialog.querySelector("input[type=text]");
  if (input) input.focus();
});
