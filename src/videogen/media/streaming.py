"""An mp4 writer fed one frame at a time, for clips too long to hold in memory.

It writes the same file as ``write_mp4`` (H.264, yuv420p, BT.709 tags, even sizes, index at the
front, metadata folded by ``mp4_tags``) and, like every writer, writes into a temporary name
that is renamed into place only when the whole clip is written.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.container import OutputContainer
from av.video.stream import VideoStream

from videogen.media.writers import (
    _X264_OPTIONS,
    _checked,
    _pad_even,
    _rate,
    _tag_bt709,
    _yuv_frame,
    mp4_tags,
    staged,
)


class Mp4Stream:
    """Context manager that encodes each ``write(frame)`` at once and keeps no frames.

    The frame size is taken from the first frame; every later frame must have the same size.
    Leaving the block normally flushes the encoder and renames the file into place; leaving it
    with an exception, or with no frame written, leaves no file.
    """

    def __init__(self, path: Path, fps: float, metadata: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.rate = _rate(fps)  # checked here, so a bad fps fails before any file is opened
        self.metadata = mp4_tags(metadata or {})
        #: frames encoded so far
        self.frames = 0
        self._size: tuple[int, int] | None = None  # (height, width) as given, before padding
        self._exits: ExitStack | None = None
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None

    def __enter__(self) -> Mp4Stream:
        with ExitStack() as exits:
            tmp = exits.enter_context(staged(self.path))
            container = exits.enter_context(
                av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
            )
            container.metadata.update(self.metadata)
            self._container, self._exits = container, exits.pop_all()
        return self

    def write(self, frame: np.ndarray) -> None:
        """Encode one uint8 RGB frame of shape (H, W, 3)."""
        if self._container is None:
            raise RuntimeError("Mp4Stream.write outside its with-block")
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            got = f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}"
            raise ValueError(f"expected a uint8 frame of shape (H, W, 3), got {got}")
        rgb = _pad_even(_checked(frame[None]))[0]  # the writers' checks: uint8, 3 channels, not empty
        if self._stream is None:
            self._size = frame.shape[:2]
            self._stream = self._add_stream(*rgb.shape[:2])
        elif frame.shape[:2] != self._size:
            raise ValueError(f"frame {self.frames} is {frame.shape[:2]}, the clip's frames are {self._size}")
        self._container.mux(self._stream.encode(_yuv_frame(rgb)))
        self.frames += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        exits, container, stream = self._exits, self._container, self._stream
        self._exits = self._container = self._stream = None
        assert exits is not None and container is not None
        if exc_type is not None:  # the staged file is removed, and the exception goes on
            return bool(exits.__exit__(exc_type, exc, tb))
        with exits:  # closes the container, then renames the file into place (or removes it)
            if stream is None:
                raise ValueError(f"no frames were written to {self.path}")
            container.mux(stream.encode(None))
        return False

    def _add_stream(self, height: int, width: int) -> VideoStream:
        assert self._container is not None
        stream = self._container.add_stream("libx264", rate=self.rate, options=dict(_X264_OPTIONS))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        _tag_bt709(stream.codec_context)
        return stream
