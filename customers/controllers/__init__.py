"""HTTP handlers of the customers app: JSON API, import/export, pages."""
