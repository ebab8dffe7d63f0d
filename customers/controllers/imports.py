"""JSON API of imports and exports: the template, upload, preview, run, report, export.

The upload is parsed as it arrives (python-multipart's streaming parser) and written to
``settings.import_dir`` chunk by chunk: a 100 MB file never sits in memory. Everything else
is a two-line handler over :mod:`customers.services.imports` and
:mod:`customers.services.exports`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated

from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException
from litestar.params import FromPath, QueryParameter
from litestar.response import Response, Stream
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from customers.services import customers, exports, imports
from customers.services.imports import ImportIssuePage, ImportJobOut, ImportOptions
from loyalmail.auth import principal_of
from loyalmail.errors import MalformedRequest, ValidationFailed, _
from loyalmail.form_token import multipart_parser
from loyalmail.settings import get_settings

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Room for the multipart envelope around a file of the largest allowed size.
_ENVELOPE_BYTES = 64 * 1024
_MAX_FIELD_BYTES = 1000
_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"", "0", "false", "off", "no"}


def _attachment(filename: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="{filename}"'}


def _too_large() -> ClientException:
    limit = get_settings().max_import_bytes
    return ClientException(
        status_code=413,
        detail=f"The file is larger than the import limit of {limit // 1_000_000} MB. "
        "Split it into smaller files.",
    )


@dataclass
class _Upload:
    """State of one streamed multipart body: the file goes to disk, small fields to memory."""

    directory: Path
    limit: int
    path: Path | None = None
    filename: str = ""
    fields: dict[str, bytearray] = field(default_factory=dict)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header_name: bytes = b""
    _header_value: bytes = b""
    _part: str = ""
    _file: IO[bytes] | None = None
    _written: int = 0

    def on_part_begin(self) -> None:
        self._headers = {}
        self._part = ""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part = name
        if name != "file":
            return
        if self.path is not None:
            raise ValidationFailed(_("Upload one file at a time."), fields={"file": "twice"})
        self.filename = Path(params.get(b"filename", b"").decode("utf-8", "replace")).name
        suffix = Path(self.filename).suffix.lower()
        if suffix not in {".csv", ".xlsx"}:
            raise ValidationFailed(
                _("Only .csv and .xlsx files can be imported."),
                fields={"file": self.filename or _("no file name")},
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{uuid.uuid4().hex}{suffix}"
        self._file = self.path.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file" and self._file is not None:
            self._written += end - start
            if self._written > self.limit:
                raise _too_large()
            self._file.write(data[start:end])
        elif self._part:
            value = self.fields.setdefault(self._part, bytearray())
            value += data[start:end]
            if len(value) > _MAX_FIELD_BYTES:
                raise ValidationFailed(_("A form field is too long."), fields={self._part: "long"})

    def on_part_end(self) -> None:
        if self._part == "file" and self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def flag(self, name: str) -> bool:
        raw = bytes(self.fields.get(name, b"")).decode("utf-8", "replace").strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ValidationFailed(_("Use true or false."), fields={name: raw[:20]})


async def receive_upload(request: Request) -> _Upload:
    """Stream a multipart body's ``file`` part to the import folder; refuse anything else."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ValidationFailed(
            _("Send the file as multipart/form-data in a field named 'file'."),
            fields={"file": _("missing")},
        )
    settings = get_settings()
    upload = _Upload(directory=settings.import_dir, limit=settings.max_import_bytes)
    parser = multipart_parser(boundary, upload)
    try:
        try:
            async for chunk in request.stream():
                if chunk:
                    parser.write(chunk)
            parser.finalize()
        except ClientException as exc:
            if exc.status_code == 413:
                raise _too_large() from exc
            raise
        except FormParserError as exc:
            # A part header past the parser's limit, a broken boundary: the caller's input.
            raise MalformedRequest(_("The form data could not be read.")) from exc
        if upload.path is None:
            raise ValidationFailed(
                _("Choose a .csv or .xlsx file to import."), fields={"file": _("missing")}
            )
        if upload._file is not None:
            raise ValidationFailed(_("The upload was cut off. Try again."), fields={"file": ""})
    except BaseException:
        upload.discard()
        raise
    return upload


async def _report_chunks(merchant_id: int, job_id: int) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(["row", "email", "column", "kind", "message"])
    async for issue in imports.iter_issues(merchant_id, job_id):
        writer.writerow(
            [
                issue.row_number,
                exports.neutralise(issue.email),
                issue.column,
                issue.kind,
                exports.neutralise(issue.message),
            ]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


class ImportApiController(Controller):
    path = "/api"
    tags = ["imports"]

    @get("/imports/template.csv", media_type=CSV_MEDIA_TYPE)
    async def template_csv(self) -> Response[bytes]:
        return Response(
            exports.template_csv(),
            media_type=CSV_MEDIA_TYPE,
            headers=_attachment("loyalmail-customers-template.csv"),
        )

    @get("/imports/template.xlsx", media_type=XLSX_MEDIA_TYPE)
    async def template_xlsx(self) -> Stream:
        path = await exports.template_xlsx()
        return Stream(
            exports.file_chunks(path),
            media_type=XLSX_MEDIA_TYPE,
            headers=_attachment("loyalmail-customers-template.xlsx"),
        )

    @post(
        "/imports",
        status_code=202,
        request_max_body_size=get_settings().max_import_bytes + _ENVELOPE_BYTES,
    )
    async def upload(self, request: Request) -> ImportJobOut:
        """multipart/form-data: ``file`` (.csv or .xlsx) and the flags ``mark_verified`` and
        ``send_optin``. Answers 202 with the job; its dry run follows in the background."""
        principal = principal_of(request)
        upload = await receive_upload(request)
        try:
            options = ImportOptions(
                mark_verified=upload.flag("mark_verified"), send_optin=upload.flag("send_optin")
            )
        except ValidationFailed:
            upload.discard()
            raise
        assert upload.path is not None
        return await imports.create_job(
            principal.merchant_id,
            filename=upload.filename,
            stored_path=upload.path,
            options=options,
            created_by=principal.user_id,
            actor=principal.email,
        )

    @get("/imports")
    async def list_imports(self, request: Request) -> list[ImportJobOut]:
        return await imports.list_jobs(principal_of(request).merchant_id)

    @get("/imports/{job_id:int}")
    async def get_import(self, request: Request, job_id: FromPath[int]) -> ImportJobOut:
        return await imports.get_job(principal_of(request).merchant_id, job_id)

    @post("/imports/{job_id:int}/run", status_code=202)
    async def run_import(self, request: Request, job_id: FromPath[int]) -> ImportJobOut:
        return await imports.start_apply(principal_of(request).merchant_id, job_id)

    @get("/imports/{job_id:int}/issues")
    async def list_import_issues(
        self,
        request: Request,
        job_id: FromPath[int],
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> ImportIssuePage:
        return await imports.list_issues(
            principal_of(request).merchant_id, job_id, page=page, per_page=per_page
        )

    @get("/imports/{job_id:int}/report.csv", media_type=CSV_MEDIA_TYPE)
    async def import_report(self, request: Request, job_id: FromPath[int]) -> Stream:
        merchant_id = principal_of(request).merchant_id
        await imports.get_job(merchant_id, job_id)  # 404 before the stream starts
        return Stream(
            _report_chunks(merchant_id, job_id),
            media_type=CSV_MEDIA_TYPE,
            headers=_attachment(f"import-{job_id}-report.csv"),
        )

    @get("/customers/export.csv", media_type=CSV_MEDIA_TYPE)
    async def export_csv(self, request: Request) -> Stream:
        """The customer list's filters (``q``, ``customer_type``, …); page/per_page ignored."""
        query = customers.parse_customer_query(_filters(request))
        spool = await exports.spool_customers(principal_of(request).merchant_id, query)
        return Stream(
            exports.csv_chunks(spool),
            media_type=CSV_MEDIA_TYPE,
            headers=_attachment("customers.csv"),
        )

    @get("/customers/export.xlsx", media_type=XLSX_MEDIA_TYPE)
    async def export_xlsx(self, request: Request) -> Stream:
        query = customers.parse_customer_query(_filters(request))
        path = await exports.xlsx_file(principal_of(request).merchant_id, query)
        return Stream(
            exports.file_chunks(path),
            media_type=XLSX_MEDIA_TYPE,
            headers=_attachment("customers.xlsx"),
        )


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in {"page", "per_page"}}
