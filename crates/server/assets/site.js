// Small behaviours every page may use: copy buttons and local times. No inline script runs on
// these pages (the CSP forbids it), so each page loads what it needs from /assets.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    // No clipboard (an insecure context): select the text so the person can copy it.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

for (const element of document.querySelectorAll("time.ms[data-ms]")) {
  const ms = Number(element.dataset.ms);
  if (Number.isFinite(ms)) element.textContent = new Date(ms).toLocaleString();
}
