"""``lpmatte serve``: the HTTP API and web page (needs the ``serve`` extra)."""

from __future__ import annotations

from lpmatte.cli.common import add_command, add_model_arguments, load_matter
from lpmatte.errors import LpmatteError

EXAMPLES = """\
examples:
  lpmatte serve                                   http://127.0.0.1:7860 (page, API, /docs)
  lpmatte serve --workers 2 --max-queue 16
  curl -sf -F file=@photo.jpg "http://127.0.0.1:7860/v1/matte?format=rgba" -o cutout.png
"""


def register(subparsers) -> None:
    from lpmatte.serve.limits import ServeLimits

    defaults = ServeLimits()
    parser = add_command(
        subparsers, "serve", "HTTP API and web page for matting", examples=EXAMPLES,
        description="Serve POST /v1/matte, a web page at / and OpenAPI docs at /docs.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    parser.add_argument("--workers", type=int, default=defaults.workers, metavar="N",
                        help=f"inferences at once (default {defaults.workers})")
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue, metavar="N",
                        help="requests waiting for a worker before new ones get 503 "
                             f"(default {defaults.max_queue})")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb,
                        metavar="N", help=f"largest request body (default "
                                          f"{defaults.max_upload_mb:g})")
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels, metavar="N",
                        help="largest width x height, checked before decoding "
                             f"(default {defaults.max_pixels})")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, metavar="S",
                        help=f"seconds one request may take (default {defaults.timeout_s:g})")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        from lpmatte.serve.server import serve
    except ImportError as error:
        raise LpmatteError(f"lpmatte serve needs the serve extra: pip install "
                           f"'lpmatte[serve]' ({error})") from None
    from lpmatte.serve.limits import ServeLimits

    try:
        limits = ServeLimits(args.workers, args.max_queue, args.max_upload_mb, args.max_pixels,
                             args.timeout)
    except ValueError as error:
        raise LpmatteError(str(error)) from None
    return serve(lambda: load_matter(args), args.host, args.port, limits)

