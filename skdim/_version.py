"""The installed version of skdim (read from the package metadata, imported by nothing else)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skdim-sitenet")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
