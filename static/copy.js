// Copy buttons: <button data-copy="element-id"> copies that element's text.
"use strict";
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = button.dataset.copied || "Copied";
    } catch (e) {
      // No clipboard access (e.g. not a secure context): select the text for a manual copy.
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = button.dataset.press || "Press Ctrl+C";
    }
  });
});
