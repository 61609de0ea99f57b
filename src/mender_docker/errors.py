"""The workstation side's exception hierarchy.

    MenderDockerError            anything this package reports as a one-line error
    ├── ArtifactError            artifact/: malformed, unverifiable or unwritable artifacts
    │   └── SignatureError       signature missing, wrong key type, does not verify
    ├── RegistryError            registry/: unreachable, auth refused, unknown image/tag/platform
    └── GeneratorError           gen.py: bad options, output not writable

`spec.MetadataError` (a ValueError) stays outside: spec.py ships on the device
and imports nothing from here. The CLI edge maps all of them to one line.
"""


class MenderDockerError(Exception):
    """Base of every error this package reports to users as one line."""


class ArtifactError(MenderDockerError):
    """A Mender Artifact is malformed, fails verification, or cannot be written."""


class SignatureError(ArtifactError):
    """A manifest signature is missing, of the wrong key type, or does not verify."""


class RegistryError(MenderDockerError):
    """A registry cannot be reached, refuses us, or lacks the image asked for."""


class GeneratorError(MenderDockerError):
    """The generator was given options it cannot turn into an artifact."""
