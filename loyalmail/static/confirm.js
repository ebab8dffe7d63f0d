// A form with data-confirm asks before it is sent. The pages' policy (loyalmail.security_headers)
// runs no inline code, so this replaces the onsubmit="return confirm(…)" attributes. In the
// capture phase: a refusal stops the submit before any other listener (htmx's) sends it.
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopPropagation();
    }
  },
  true,
);
