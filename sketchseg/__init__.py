"""sketchseg: open-vocabulary semantic segmentation of freehand scene sketches."""

from sketchseg.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    SketchsegError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "SketchsegError",
    "__version__",
]
