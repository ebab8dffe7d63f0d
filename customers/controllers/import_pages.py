"""The import wizard: template → upload → preview (dry run) → confirm → progress → report.

The upload is streamed to disk by the import API's own parser; the background jobs do the
rest. The page polls a small status fragment every second while a job is busy.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from customers.controllers.imports import receive_upload
from customers.services import imports
from customers.services.imports import ImportJobOut, ImportOptions
from loyalmail.auth import principal_of
from loyalmail.errors import LoyalmailError, _
from loyalmail.i18n import gettext
from loyalmail.pages_controller import page, partial
from loyalmail.settings import get_settings

#: Statuses in which a background job is still working: the page keeps polling.
BUSY = frozenset({"uploaded", "previewing", "importing"})
#: Issue lines shown on the page; the full list is in the downloadable report.
ISSUES_SHOWN = 100
#: The wizard's "consent" choice → the job's options (the two flags exclude each other).
CONSENT_CHOICES = {
    "none": ImportOptions(),
    "verified": ImportOptions(mark_verified=True),
    "optin": ImportOptions(send_optin=True),
}


def _progress(job: ImportJobOut) -> int:
    if job.status == "done":
        return 100
    if job.status != "importing" or not job.rows_total:
        return 0
    return min(100, round(100 * job.rows_processed / max(1, job.rows_total)))


async def _job_context(merchant_id: int, job_id: int) -> dict[str, Any]:
    job = await imports.get_job(merchant_id, job_id)
    issues = None
    if job.status in ("previewed", "done", "importing"):
        issues = await imports.list_issues(merchant_id, job_id, per_page=ISSUES_SHOWN)
    return {"job": job, "issues": issues, "busy": job.status in BUSY, "percent": _progress(job)}


class ImportPagesController(Controller):
    path = "/customers/import"
    include_in_schema = False

    async def _start_page(
        self, request: Request, *, error: str = "", status_code: int = 200
    ) -> Template:
        merchant_id = principal_of(request).merchant_id
        return await page(
            request,
            "import_start.html",
            active="customers",
            error=error,
            recent=await imports.list_jobs(merchant_id, limit=10),
            max_megabytes=get_settings().max_import_bytes // 1_000_000,
            status_code=status_code,
        )

    @get("/")
    async def start(self, request: Request) -> Template:
        return await self._start_page(request)

    @post(
        "/",
        status_code=303,
        request_max_body_size=get_settings().max_import_bytes + 64 * 1024,
    )
    async def upload(self, request: Request) -> Redirect | Template:
        principal = principal_of(request)
        try:
            upload = await receive_upload(request)
        except LoyalmailError as exc:
            return await self._start_page(
                request, error=gettext(exc.message), status_code=exc.status_hint
            )
        choice = bytes(upload.fields.get("consent", b"none")).decode("utf-8", "replace")
        if choice not in CONSENT_CHOICES:
            upload.discard()
            return await self._start_page(
                request, error=gettext(_("Choose one of the offered values.")), status_code=422
            )
        assert upload.path is not None
        try:
            job = await imports.create_job(
                principal.merchant_id,
                filename=upload.filename,
                stored_path=upload.path,
                options=CONSENT_CHOICES[choice],
                created_by=principal.user_id,
                actor=principal.email,
            )
        except LoyalmailError as exc:
            return await self._start_page(
                request, error=gettext(exc.message), status_code=exc.status_hint
            )
        return Redirect(f"/customers/import/{job.id}", status_code=303)

    @get("/{job_id:int}")
    async def job_page(self, request: Request, job_id: FromPath[int]) -> Template:
        context = await _job_context(principal_of(request).merchant_id, job_id)
        return await page(request, "import_job.html", active="customers", **context)

    @get("/{job_id:int}/status")
    async def job_status(self, request: Request, job_id: FromPath[int]) -> Template:
        """The fragment the page polls while the job works."""
        context = await _job_context(principal_of(request).merchant_id, job_id)
        return partial("_import_status.html", **context)

    @post("/{job_id:int}/run", status_code=303)
    async def run(self, request: Request, job_id: FromPath[int]) -> Redirect | Template:
        merchant_id = principal_of(request).merchant_id
        try:
            await imports.start_apply(merchant_id, job_id)
        except LoyalmailError as exc:
            if exc.status_hint == 404:
                raise
            context = await _job_context(merchant_id, job_id)
            return await page(
                request,
                "import_job.html",
                active="customers",
                error=gettext(_("This import cannot be started now. Reload the page.")),
                status_code=exc.status_hint,
                **context,
            )
        return Redirect(f"/customers/import/{job_id}", status_code=303)
