"""The reference of benchmarks/tracking.py: a bare Litestar endpoint that answers the same
1×1 GIF with no token, no database and no middleware, served the same way."""

from litestar import Litestar, Response, get

from tracking.redirects import PIXEL


@get("/r/o/{name:str}")
async def pixel(name: str) -> Response[bytes]:
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})


def create_app() -> Litestar:
    return Litestar(route_handlers=[pixel], openapi_config=None)
