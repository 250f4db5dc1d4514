"""Images and videos in and out: decoding with limits, background threads, video reading and
writing (:mod:`lpmatte.media.video`), compositing and foreground colour estimation. Imports
no model code; atomic writing is :mod:`lpmatte.files`, below it."""
