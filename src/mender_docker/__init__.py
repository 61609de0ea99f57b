"""Container updates for Mender: update module, artifact generator, artifact library."""

__version__ = "0.1.0"
