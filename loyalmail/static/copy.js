// Copy buttons: <button class="copy" data-copy="ID" data-copied="Copied"> copies the text of
// the element with that id, and says so on the button for a moment.
for (const button of document.querySelectorAll("button.copy[data-copy]")) {
  const label = button.textContent;
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy)?.textContent || "";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard (http:// on another host): select the text so Ctrl-C copies it.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }
    button.textContent = button.dataset.copied || label;
    setTimeout(() => (button.textContent = label), 1500);
  });
}
