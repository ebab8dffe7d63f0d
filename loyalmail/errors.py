"""One hierarchy of domain errors; :mod:`loyalmail.http_errors` maps it to HTTP in one place.

    LoyalmailError                      500  (never raised directly)
    ├── MalformedRequest                400  a body that cannot be read (a broken multipart)
    ├── NotFound                        404  missing, or another merchant's
    ├── ValidationFailed                422  input that breaks a rule; ``fields`` says where
    ├── Conflict                        409  e.g. an address the merchant already has
    │   └── QuotaExceeded               409  a send that does not fit; ``extra`` has the figures
    ├── PermissionDenied                403  logged in, but the role may not do it
    ├── AuthenticationFailed            401  no or bad credentials
    ├── Suppressed                      409  an erased / suppressed address without fresh opt-in
    └── ServiceUnavailable              503  a real part (database, broker, SMTP) is down

Services raise these; they never import anything of HTTP. Messages are plain English
sentences wrapped in ``_`` so pages can show them translated.
"""

from __future__ import annotations


def _(message: str) -> str:
    """Marks a message for extraction into the catalogs; translated where it is shown."""
    return message


class LoyalmailError(Exception):
    status_hint = 500

    def __init__(
        self, message: str, *, fields: dict[str, str] | None = None, extra: object = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        #: Structured detail for API callers (a quota refusal's figures), sent as ``extra``.
        self.extra = extra


class MalformedRequest(LoyalmailError):
    status_hint = 400


class NotFound(LoyalmailError):
    status_hint = 404


class ValidationFailed(LoyalmailError):
    status_hint = 422


class Conflict(LoyalmailError):
    status_hint = 409


class Suppressed(Conflict):
    pass


class QuotaExceeded(Conflict):
    pass


class PermissionDenied(LoyalmailError):
    status_hint = 403


class AuthenticationFailed(LoyalmailError):
    status_hint = 401


class ServiceUnavailable(LoyalmailError):
    status_hint = 503
