"""JSON API of target groups: predefined groups, previews of any definition, saved segments.

Two-line handlers: who is calling, then one service call. A bad definition is a 422 whose
``extra`` (msgspec's message) or ``fields`` (the service's checks) name its JSON path.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from loyalmail.auth import principal_of
from loyalmail.i18n import gettext
from segments import services
from segments.schemas import (
    Catalog,
    PredefinedOut,
    Preview,
    PreviewRequest,
    SegmentCreate,
    SegmentList,
    SegmentOut,
    SegmentUpdate,
)

SampleSize = Annotated[int, Parameter(ge=0, le=50)]


class SegmentApiController(Controller):
    path = "/api/segments"
    tags = ["segments"]

    @get("/predefined")
    async def list_predefined(self, request: Request) -> list[PredefinedOut]:
        """The predefined groups with their live counts (names in the caller's language)."""
        groups = await services.list_predefined(principal_of(request).merchant_id)
        return [
            PredefinedOut(
                key=g.key,
                name=gettext(g.name),
                description=gettext(g.description),
                count=g.count,
                quota_cost=g.quota_cost,
            )
            for g in groups
        ]

    @get("/predefined/{key:str}")
    async def preview_predefined(
        self, request: Request, key: FromPath[str], sample_size: FromQuery[SampleSize] = 10
    ) -> Preview:
        merchant_id = principal_of(request).merchant_id
        return await services.preview_predefined(merchant_id, key, sample_size)

    @post("/preview", status_code=200)
    async def preview(self, request: Request, data: JSONBody[PreviewRequest]) -> Preview:
        """Count, quota cost and a sample of any definition, saved or not."""
        merchant_id = principal_of(request).merchant_id
        return await services.preview_definition(merchant_id, data.definition, data.sample_size)

    @get("/catalog")
    async def catalog(self, request: Request) -> Catalog:
        """What the builder offers: condition types, the merchant's cities and field names."""
        return await services.catalog(principal_of(request).merchant_id, gettext)

    @get("")
    async def list_segments(self, request: Request) -> SegmentList:
        """Saved segments with their live counts."""
        return SegmentList(items=await services.list_segments(principal_of(request).merchant_id))

    @post("", status_code=HTTP_201_CREATED)
    async def create_segment(self, request: Request, data: JSONBody[SegmentCreate]) -> SegmentOut:
        p = principal_of(request)
        return await services.create_segment(p.merchant_id, data, created_by=p.user_id)

    @get("/{segment_id:int}")
    async def get_segment(self, request: Request, segment_id: FromPath[int]) -> SegmentOut:
        merchant_id = principal_of(request).merchant_id
        return await services.get_segment(merchant_id, segment_id, with_count=True)

    @patch("/{segment_id:int}")
    async def update_segment(
        self, request: Request, segment_id: FromPath[int], data: JSONBody[SegmentUpdate]
    ) -> SegmentOut:
        merchant_id = principal_of(request).merchant_id
        return await services.update_segment(merchant_id, segment_id, data)

    @delete("/{segment_id:int}", status_code=HTTP_204_NO_CONTENT)
    async def delete_segment(self, request: Request, segment_id: FromPath[int]) -> None:
        await services.delete_segment(principal_of(request).merchant_id, segment_id)

    @get("/{segment_id:int}/preview")
    async def preview_segment(
        self, request: Request, segment_id: FromPath[int], sample_size: FromQuery[SampleSize] = 10
    ) -> Preview:
        merchant_id = principal_of(request).merchant_id
        return await services.preview_segment(merchant_id, segment_id, sample_size)
