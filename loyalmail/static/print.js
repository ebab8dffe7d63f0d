// The printable sign-up sheet's "Print" button (a file: the pages' policy runs no inline code).
document.getElementById("print")?.addEventListener("click", () => window.print());
