"""`lpmatte video`: matte a video into a transparent or composited one (lpmatte.apps.video)."""

from __future__ import annotations

from lpmatte.apps.video import FORMATS, convert_video
from lpmatte.cli.common import add_command, add_model_arguments, load_matter, parse_max_pixels
from lpmatte.media.image_io import DEFAULT_MAX_PIXELS

EXAMPLES = """\
formats:
  prores     .mov   ProRes 4444 with alpha (yuva444p10le), for editors
  webm       .webm  VP9 with alpha (yuva420p), for browsers
  png        folder RGBA frames 000000.png, 000001.png, ...
  alpha      .mp4/.mov/.mkv/.webm  the matte as a grey video
  green      .mp4/.mov/.mkv/.webm  over pure green
  composite  .mp4/.mov/.mkv/.webm  over --background (colour, image or video; default white)

Frame rate, timestamps and audio are kept; rotated phone videos come out upright.
H.264 needs even sizes: an odd row/column is repeated. The output only appears when the
run succeeds.

examples:
  lpmatte video clip.mp4 -o clip.mov                          (format from the suffix)
  lpmatte video clip.mp4 -o clip.webm --start 0:05 --end 0:15
  lpmatte video clip.mp4 -o frames/ --format png
  lpmatte video clip.mp4 -o beach.mp4 --format composite --background beach.jpg
  lpmatte video /dev/video0 --input-format v4l2 --end 10 -o webcam.mov   (Linux webcam)
  lpmatte video rtsp://camera/stream --end 60 -o cam.webm
Webcams and streams work where the FFmpeg inside PyAV has the device or protocol: PyAV's
Linux wheels read rtsp://, http(s)://, HLS and x11grab but lack v4l2 (a PyAV built on the
system FFmpeg has it). Give --end, or stop with Ctrl-C (the output is then discarded).
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "video", "matte a video (ProRes/WebM with alpha, PNG frames, composites)",
        description="Matte every frame of a video with temporal stabilisation.",
        examples=EXAMPLES)
    parser.add_argument("input", help="video file, stream URL, or device (with --input-format)")
    parser.add_argument("-o", "--output", required=True,
                        help="output file, or folder for --format png")
    parser.add_argument("--format", choices=FORMATS,
                        help="output format (default: from the suffix: .mov prores, "
                             ".webm webm, no suffix png)")
    parser.add_argument("--background", metavar="COLOR|IMAGE|VIDEO",
                        help="for --format composite: colour name, #rrggbb, r,g,b, image or video")
    add_model_arguments(parser)
    parser.add_argument("--start", metavar="T", help="start time: seconds or [HH:]MM:SS(.ms)")
    parser.add_argument("--end", metavar="T", help="end time (exclusive), same forms")
    parser.add_argument("--no-stabilize", dest="stabilize", action="store_false",
                        help="matte frames independently (no temporal stabilisation)")
    parser.add_argument("--no-audio", dest="audio", action="store_false", help="drop the audio")
    parser.add_argument("--quiet", "--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    parser.add_argument("--input-format", metavar="FMT",
                        help="FFmpeg input format for devices: v4l2, avfoundation, dshow, ...")
    parser.add_argument("--allow-partial", action="store_true",
                        help="keep the frames of a truncated or corrupt file that decode "
                             "(default: such a file is an error) and report how many were lost")
    parser.add_argument("--max-pixels", type=parse_max_pixels, default=DEFAULT_MAX_PIXELS,
                        metavar="N", help=f"refuse frames above N pixels (default "
                                          f"{DEFAULT_MAX_PIXELS}; 0: no limit)")
    parser.set_defaults(func=run)


def run(args) -> int:
    result = convert_video(
        args.input, args.output, format=args.format, background=args.background,
        matter=load_matter(args), start=args.start,
        end=args.end, stabilize=args.stabilize, progress=args.progress, audio=args.audio,
        input_format=args.input_format, allow_partial=args.allow_partial,
        max_pixels=args.max_pixels)
    print(f"{result.output}: {result.frames} frames ({result.format}), "
          f"{result.fps:.1f} fps end to end, model {result.model_fps:.1f} fps")
    return 0
