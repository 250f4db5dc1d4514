"""The FastAPI app: ``/v1/matte``, ``/v1/stream`` (WebSocket), ``/v1/models``, ``/healthz``,
``/readyz`` and the page at ``/``.

Every answer to a client's mistake is ``{"error": "..."}`` with a 4xx; a full queue or a
model still loading is a 503 with Retry-After; a bug is a 500 whose traceback goes to the
log, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from lpmatte.serve.adapter import FORMATS, __version__, list_models
from lpmatte.serve.errors import HTTPError
from lpmatte.serve.imaging import matte_image, open_upload, parse_options
from lpmatte.serve.limits import ServeLimits
from lpmatte.serve.stream import serve_stream
from lpmatte.serve.upload import read_body, split_upload
from lpmatte.serve.workers import InferencePool, QueueFull

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("lpmatte.serve")
# the page and its scripts come from this server only: nothing it shows is fetched elsewhere
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'"
MATTE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
}}}
ERROR_RESPONSES = {status: {"description": text, "content": {"application/json": {
    "example": {"error": text}}}} for status, text in [
    (400, "bad parameter or empty upload"), (413, "upload or pixel count over the limit"),
    (415, "not an image"), (422, "corrupt or truncated image"),
    (503, "queue full or model loading (see Retry-After)"), (504, "timed out")]}


class ModelState:
    """The Matter being served; with a ``loader`` it loads in the background, and /readyz
    and /v1/matte answer 503 until it is there."""

    def __init__(self, matter=None, loader: Callable | None = None,
                 on_load_error: Callable[[BaseException], None] | None = None):
        self.matter, self.loader, self.on_load_error = matter, loader, on_load_error
        self.error: str | None = None

    async def load(self) -> None:
        started = time.perf_counter()
        try:
            self.matter = await asyncio.to_thread(self.loader)
        except Exception as error:  # reported, and the server told to stop
            self.error = str(error)
            log.error("model failed to load: %s", error)
            if self.on_load_error:
                self.on_load_error(error)
            return
        log.info("model '%s' ready on %s in %.1f s", self.matter.name, self.matter.device,
                 time.perf_counter() - started)

    def require(self, retry_after: int):
        if self.matter is None:
            reason = f"model failed to load: {self.error}" if self.error else "model loading"
            raise HTTPError(503, reason, {"Retry-After": str(retry_after)})
        return self.matter


def create_app(matter=None, limits: ServeLimits | None = None, *, loader=None,
               on_load_error=None) -> FastAPI:
    """The app serving ``matter`` (an :class:`lpmatte.Matter`, or anything with ``predict``,
    ``name``, ``device`` and ``warning``), or the one ``loader()`` returns once loaded."""
    if (matter is None) == (loader is None):
        raise ValueError("give either matter or loader")
    limits = limits or ServeLimits()
    state = ModelState(matter, loader, on_load_error)
    pool = InferencePool(limits.workers, limits.max_queue)

    @asynccontextmanager
    async def lifespan(app):
        loading = asyncio.create_task(state.load()) if loader else None
        yield
        if loading:
            loading.cancel()
        await asyncio.to_thread(pool.shutdown)  # in-flight jobs finish before exit

    # /docs is a plain page over openapi.json that works offline; FastAPI's Swagger UI
    # fetches its scripts from a CDN, so it moves to /docs/swagger
    app = FastAPI(title="lpmatte", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="Portrait matting: upload an image, get its "
                                              "alpha matte, cutout, composite or trimap.")
    app.state.model, app.state.pool, app.state.limits = state, pool, limits
    add_error_handlers(app)
    add_routes(app, state, pool, limits)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(RequestLog)
    return app


def add_routes(app: FastAPI, state: ModelState, pool: InferencePool,
               limits: ServeLimits) -> None:
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html",
                            headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "docs.html",
                            headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs/swagger", include_in_schema=False)
    async def swagger():
        return get_swagger_ui_html(openapi_url="../openapi.json", title="lpmatte API")

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded",
             responses={503: ERROR_RESPONSES[503]})
    async def readyz():
        matter = state.require(limits.retry_after_s)
        return {"status": "ready", "model": matter.name, "busy": pool.busy,
                "capacity": pool.capacity}

    @app.get("/v1/models", summary="The served model and the registered names")
    async def models():
        matter = state.matter
        served = None if matter is None else {
            "name": matter.name, "device": str(matter.device), "warning": matter.warning}
        return {"served": served, "available": list_models(), "formats": list(FORMATS)}

    @app.post("/v1/matte", summary="Matte one image", response_class=Response,
              openapi_extra=MATTE_BODY, responses={
                  200: {"content": {"image/png": {}, "image/jpeg": {}},
                        "description": "the PNG (or JPEG for output=jpeg)"},
                  **ERROR_RESPONSES})
    async def matte(request: Request,
                    format: Annotated[str, Query(description="|".join(FORMATS))] = "alpha",
                    background: Annotated[str | None, Query(
                        description="composite colour: name, #rrggbb or r,g,b (default "
                                    "green)")] = None,
                    max_side: Annotated[int | None, Query(
                        description="shrink so the longer side is at most this")] = None,
                    output: Annotated[str, Query(
                        description="png, or jpeg (composite only)")] = "png"):
        # the parameters above document the API; parse_options reads them (and form fields)
        try:
            return await asyncio.wait_for(_matte(request), limits.timeout_s)
        except asyncio.TimeoutError:  # the builtin only from Python 3.11
            raise HTTPError(504, f"no answer within {limits.timeout_s:g} s") from None

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket):
        """Live video: one binary frame in, one result out, steadied across frames (see
        :mod:`lpmatte.serve.stream`)."""
        await serve_stream(websocket, state, pool, limits)

    async def _matte(request: Request) -> Response:
        matter = state.require(limits.retry_after_s)
        try:
            pool.check_room()  # before reading the body: a busy server answers at once
            body = await read_body(request, limits.max_upload_bytes)
            data, fields = split_upload(request.headers.get("content-type"), body)
            options = parse_options({**fields, **request.query_params})
            image = open_upload(data, limits.max_pixels)
            result = await pool.run(matte_image, matter, image, options)
        except QueueFull:
            raise HTTPError(503, f"busy: {pool.capacity} requests already queued or running",
                            {"Retry-After": str(limits.retry_after_s)}) from None
        headers = {"X-Lpmatte-Model": matter.name, "Cache-Control": "no-store",
                   "Content-Disposition": f'inline; filename="{options.fmt}.{options.output}"'}
        if matter.warning:
            headers["X-Lpmatte-Warning"] = matter.warning
        return Response(result.content, media_type=result.media_type, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPError)
    async def our_error(request, error: HTTPError):
        return JSONResponse({"error": error.message}, error.status, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request, error: StarletteHTTPException):  # 404, 405
        return JSONResponse({"error": str(error.detail)}, error.status_code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request, error: RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "query")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 400)

    @app.exception_handler(Exception)
    async def bug(request, error: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error (see the server log)"}, 500)


class RequestLog:
    """One log line per request: method, path, status, milliseconds, bytes in and out."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, seen = time.perf_counter(), {"status": 500, "in": 0, "out": 0}

        async def counting_receive():
            message = await receive()
            seen["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            log.info("%s %s %d %.0fms in=%dB out=%dB", scope["method"], scope["path"],
                     seen["status"], (time.perf_counter() - started) * 1000, seen["in"],
                     seen["out"])
