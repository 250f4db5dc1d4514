"""Video in and out with PyAV (FFmpeg), one concern a module.

- :mod:`~lpmatte.media.video.reader`: :class:`VideoSource` decodes a file, stream or capture
  device, turns each frame upright (the container's display rotation is applied to the
  pixels, so outputs need no rotation flag) and gives timestamps relative to the first frame
  kept; a file that decodes short of its header is an error unless ``allow_partial``.
- :mod:`~lpmatte.media.video.encoders`: the FFmpeg encoders an output format may use.
- :mod:`~lpmatte.media.video.writer`: :class:`ContainerWriter` keeps the input's time base
  and every frame's timestamp, so frame rate (also a variable one) and audio sync survive;
  :class:`PngSequenceWriter` writes ``000000.png, ...``.
- :mod:`~lpmatte.media.video.audio`: :class:`AudioCopier` copies the first audio track as
  is, or re-encodes it when the output container cannot hold its codec.
- :mod:`~lpmatte.media.video.output`: outputs are written under a temporary name next to
  the final one and renamed at the end, so an interrupted run never leaves a broken file.
- :mod:`~lpmatte.media.video.pyav`: PyAV is the optional ``video`` extra, imported lazily.

Decoding and encoding run in threads (:mod:`lpmatte.media.threads`).
"""
