"""Media layer: read input videos, write mp4/webm/gif/PNG frames and the JSON sidecar."""

from videogen.media.frames import read_video, to_uint8
from videogen.media.outputs import reserve_stem, slugify, write_outputs
from videogen.media.writers import FORMATS, write_frames, write_gif, write_mp4, write_webm

__all__ = [
    "FORMATS",
    "read_video",
    "reserve_stem",
    "slugify",
    "to_uint8",
    "write_frames",
    "write_gif",
    "write_mp4",
    "write_outputs",
    "write_webm",
]
