"""``/v1/stream``: the frames of a live video (a webcam, a call) over one WebSocket.

The client sends each frame as one binary message (PNG, JPEG, WebP, ...) and gets one
message back per frame, in order: the encoded result as binary, or, when that frame could
not be matted, a text message ``{"error": "...", "status": 4xx|503}`` (the stream goes on
and the frame is skipped). The connection keeps the state of ``lpmatte video``'s temporal
stabilisation, so still parts of the picture do not flicker from frame to frame
(``stabilize=false`` mattes every frame on its own). Options that are wrong for the whole
stream are sent the same way, then the socket closes with code 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from starlette.websockets import WebSocket, WebSocketDisconnect

from lpmatte.serve.adapter import LpmatteError, render, to_uint8, video_predictor
from lpmatte.serve.errors import HTTPError
from lpmatte.serve.imaging import MatteOptions, decode, encode, open_upload, parse_options
from lpmatte.serve.limits import ServeLimits
from lpmatte.serve.workers import InferencePool, QueueFull

STREAM_FORMATS = ("alpha", "rgba", "composite")  # no trimap: it is the unsteadied stage
POLICY_VIOLATION = 1008
log = logging.getLogger("lpmatte.serve")
SWITCHES = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}


def stream_options(params) -> tuple[MatteOptions, bool]:
    """The /v1/matte options plus ``stabilize``; a mistake is a 400."""
    options = parse_options(params)
    if options.fmt not in STREAM_FORMATS:
        raise HTTPError(400, f"format={options.fmt} cannot be streamed (choose from "
                             f"{', '.join(STREAM_FORMATS)})")
    switch = (params.get("stabilize") or "true").lower()
    if switch not in SWITCHES:
        raise HTTPError(400, f"stabilize must be true or false, got '{switch}'")
    return options, SWITCHES[switch]


def matte_frame(predict, data: bytes, options: MatteOptions, max_pixels: int) -> bytes:
    """One frame: the upload checks of /v1/matte, then ``predict`` (stateful, in order)."""
    rgb = decode(open_upload(data, max_pixels), options.max_side)
    frame = to_uint8(rgb)
    try:
        pixels = render(rgb, predict(frame), None, options.fmt, options.background)
    except LpmatteError as error:
        raise HTTPError(422, str(error)) from None
    return encode(pixels, options.output)


async def send_error(websocket: WebSocket, error: HTTPError) -> None:
    await websocket.send_text(json.dumps({"error": error.message, "status": error.status}))


async def serve_stream(websocket: WebSocket, state, pool: InferencePool,
                       limits: ServeLimits) -> None:
    await websocket.accept()
    try:
        options, stabilize = stream_options(websocket.query_params)
        matter = state.require(limits.retry_after_s)
    except HTTPError as error:
        await send_error(websocket, error)
        await websocket.close(POLICY_VIOLATION, error.message[:120])
        return
    predict = serialised(video_predictor(matter, stabilize))
    answered = {"frames": 0, "errors": 0}
    try:
        while True:
            try:
                data = await receive_frame(websocket, limits.max_upload_bytes)
                result = await pool.run(matte_frame, predict, data, options,
                                        limits.max_pixels, timeout=limits.timeout_s)
            except HTTPError as error:
                await refuse(websocket, error, answered)
                continue
            except QueueFull:
                await refuse(websocket, HTTPError(503, "busy: frame dropped"), answered)
                continue
            except asyncio.TimeoutError:  # the builtin only from Python 3.11
                await refuse(websocket, HTTPError(504, "frame timed out"), answered)
                continue
            await websocket.send_bytes(result)
            answered["frames"] += 1
    except WebSocketDisconnect:
        log.info("stream closed: %d frames matted, %d refused", answered["frames"],
                 answered["errors"])


async def refuse(websocket: WebSocket, error: HTTPError, answered: dict) -> None:
    answered["errors"] += 1
    await send_error(websocket, error)


def serialised(predict):
    """A frame that timed out may still be running when the next one starts on another
    worker: the stabiliser's state must see the frames one at a time."""
    lock = threading.Lock()

    def one_at_a_time(frame):
        with lock:
            return predict(frame)
    return one_at_a_time


async def receive_frame(websocket: WebSocket, max_bytes: int) -> bytes:
    """The next binary message; a text message or one over ``max_bytes`` is an error."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data = message.get("bytes")
    if data is None:
        raise HTTPError(400, "send each frame as one binary message")
    if len(data) > max_bytes:
        raise HTTPError(413, f"frame of {len(data)} bytes is over the limit of {max_bytes}")
    return data
