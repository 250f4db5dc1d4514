"""Reading a request body with a size cap, and finding the image in it.

The body is counted while it streams in, so an oversized upload is refused after at most
``limit`` bytes, whatever Content-Length claims. Multipart forms are parsed in memory
(the body is already capped), so no upload ever touches the disk.
"""

from __future__ import annotations

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import FormParser, parse_options_header

from lpmatte.serve.errors import HTTPError

IMAGE_FIELDS = (b"file", b"image")


def too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"upload larger than this server's limit of {limit / 2**20:g} MB")


async def read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


def split_upload(content_type: str | None, body: bytes) -> tuple[bytes, dict[str, str]]:
    """(image bytes, text form fields). A multipart form carries the image in its ``file``
    (or ``image``, or first file) part; any other body is the image itself."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        return body, {}
    if b"boundary" not in params:
        raise HTTPError(400, "multipart/form-data without a boundary")
    return _parse_form(params[b"boundary"], body)


def _parse_form(boundary: bytes, body: bytes) -> tuple[bytes, dict[str, str]]:
    files: dict[bytes, bytes] = {}
    fields: dict[str, str] = {}

    def on_file(part) -> None:
        files.setdefault(part.field_name or b"", part.file_object.getvalue())

    def on_field(part) -> None:
        name, value = part.field_name or b"", part.value or b""
        if name in IMAGE_FIELDS:  # curl -F 'file=<photo.jpg' sends the image without a name
            files.setdefault(name, value)
        else:
            fields[name.decode("latin-1")] = value.decode("utf-8", "replace")

    config = {"MAX_MEMORY_FILE_SIZE": float("inf"), "UPLOAD_ERROR_ON_BAD_CTE": True}
    try:
        parser = FormParser("multipart/form-data", on_field, on_file, boundary=boundary,
                            config=config)
        parser.write(body)
        parser.finalize()
    except (FormParserError, ValueError) as error:
        raise HTTPError(400, f"malformed multipart body ({error})") from None
    image = next((files[name] for name in IMAGE_FIELDS if name in files), None)
    if image is None and files:
        image = next(iter(files.values()))
    if image is None:
        raise HTTPError(400, "the form has no image: send it in a 'file' field")
    return image, fields
