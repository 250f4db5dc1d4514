"""Applications over a loaded :class:`lpmatte.api.Matter`: folders of images, videos."""
