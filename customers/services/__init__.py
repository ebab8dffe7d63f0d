"""Customer services: one module per concern; they know nothing of HTTP."""
