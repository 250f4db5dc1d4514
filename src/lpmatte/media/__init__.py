"""Images and videos in and out: decoding with limits, atomic writing, compositing and
foreground colour estimation. Imports no model code."""
