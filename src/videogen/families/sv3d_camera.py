"""SV3D camera orbits: the per-frame elevations and azimuths a request asks for, and what the model sees.

Conventions follow Stability's sampling script (generative-models, scripts/sampling/simple_video_sample.py):
angles are in degrees, elevation 0 is the horizon (the model takes the polar angle 90 - elevation),
and the last frame is the input view, so the default orbit is ``num_frames`` views evenly spaced over
360 degrees that ends at azimuth 0, and the azimuths fed to the model are taken relative to the last
view. Every preset here also ends at azimuth 0.

Pure functions without torch, so front-ends can validate and preview an orbit cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from videogen.errors import FieldError

#: The sampling script's default ``elevations_deg``.
DEFAULT_ELEVATION = 10.0
MIN_ELEVATION, MAX_ELEVATION = -90.0, 90.0
WAVE_AMPLITUDE = 10.0
SPIRAL_HALF_RISE = 20.0
SWING = 90.0


def orbit_azimuths(num_frames: int) -> list[float]:
    """``num_frames`` azimuths evenly spaced over one turn, ending at 0 (the input view)."""
    return [360.0 * k / num_frames % 360.0 for k in range(1, num_frames + 1)]


def _phases(num_frames: int) -> list[float]:
    """Phase in radians of each frame over one period; the last frame is back at exactly 0."""
    return [2 * math.pi * (k % num_frames) / num_frames for k in range(1, num_frames + 1)]


def _clamp(elevation: float) -> float:
    return min(max(elevation, MIN_ELEVATION), MAX_ELEVATION)


def _orbit(num_frames: int, elevation: float) -> tuple[list[float], list[float]]:
    return [elevation] * num_frames, orbit_azimuths(num_frames)


def _wave(num_frames: int, elevation: float) -> tuple[list[float], list[float]]:
    elevations = [_clamp(elevation + WAVE_AMPLITUDE * math.sin(p)) for p in _phases(num_frames)]
    return elevations, orbit_azimuths(num_frames)


def _spiral(num_frames: int, elevation: float) -> tuple[list[float], list[float]]:
    low, high = elevation - SPIRAL_HALF_RISE, elevation + SPIRAL_HALF_RISE
    steps = max(num_frames - 1, 1)
    elevations = [_clamp(low + (high - low) * k / steps) for k in range(num_frames)]
    return elevations, orbit_azimuths(num_frames)


def _front_back(num_frames: int, elevation: float) -> tuple[list[float], list[float]]:
    azimuths = [SWING * math.sin(p) % 360.0 for p in _phases(num_frames)]
    return [elevation] * num_frames, azimuths


CAMERA_PATHS: dict[str, Callable[[int, float], tuple[list[float], list[float]]]] = {
    "orbit": _orbit,
    "wave": _wave,
    "spiral": _spiral,
    "front-back": _front_back,
}


def camera_path_angles(path: str, num_frames: int, elevation: float) -> tuple[list[float], list[float]]:
    """(elevations, azimuths) in degrees for a named camera path around ``elevation``.

    - ``orbit``: one turn at a constant elevation.
    - ``wave``: one turn while the elevation swings +-10 degrees around ``elevation`` (one period).
    - ``spiral``: one turn while the elevation rises linearly from ``elevation`` - 20 to + 20
      (-10 to +30 at the default elevation of 10).
    - ``front-back``: at a constant elevation, the azimuth swings to +90, back through the front to
      -90 (270) and back to the front.

    Elevations are clamped to [-90, 90]; azimuths lie in [0, 360).
    """
    try:
        make = CAMERA_PATHS[path]
    except KeyError:
        raise FieldError("camera_path", path, f"allowed: {', '.join(CAMERA_PATHS)}") from None
    return make(num_frames, elevation)


def _check_elevations(elevations: Sequence[float]) -> None:
    for value in elevations:
        if not MIN_ELEVATION <= value <= MAX_ELEVATION:
            raise FieldError(
                "elevations",
                list(elevations),
                f"each elevation must be within [-90, 90] degrees, got {value}",
            )


def orbit_angles(
    num_frames: int,
    elevations: Sequence[float] | None,
    azimuths: Sequence[float] | None,
    camera_path: str | None,
) -> tuple[list[float], list[float]]:
    """Validate the request's camera fields and return one (elevation, azimuth) pair per frame.

    ``elevations`` holds 1 value (the whole orbit) or one per frame; ``azimuths`` one per frame.
    A ``camera_path`` takes at most one elevation (its centre) and no azimuths. Without either, the
    orbit is the sampling script's default: evenly spaced views at 10 degrees elevation.
    """
    if elevations is not None and len(elevations) not in (1, num_frames):
        raise FieldError(
            "elevations",
            list(elevations),
            f"give 1 elevation for the whole orbit or {num_frames} (one per frame), in degrees",
        )
    if camera_path is not None:
        if azimuths is not None:
            raise FieldError(
                "azimuths",
                list(azimuths),
                f"camera_path {camera_path!r} sets the azimuths; leave azimuths out",
            )
        if elevations is not None and len(elevations) != 1:
            raise FieldError(
                "elevations",
                list(elevations),
                f"camera_path {camera_path!r} takes 1 elevation (the centre of the path)",
            )
        centre = elevations[0] if elevations else DEFAULT_ELEVATION
        _check_elevations([centre])
        return camera_path_angles(camera_path, num_frames, centre)
    if azimuths is not None and len(azimuths) != num_frames:
        raise FieldError(
            "azimuths", list(azimuths), f"give {num_frames} azimuths (one per frame), in degrees"
        )
    chosen = list(elevations) if elevations else [DEFAULT_ELEVATION]
    _check_elevations(chosen)
    if len(chosen) == 1:
        chosen *= num_frames
    return chosen, list(azimuths) if azimuths is not None else orbit_azimuths(num_frames)


def model_angles(elevations: Sequence[float], azimuths: Sequence[float]) -> tuple[list[float], list[float]]:
    """(polar, azimuth) per frame in radians, as SV3D_p is conditioned.

    Polar = radians(90 - elevation). Azimuths are taken relative to the last view, wrapped into
    [0, 360) degrees. (The sampling script then calls ``azimuths_rad[:-1].sort()``, which sorts a
    temporary copy of the list and so leaves the order unchanged; the given order is kept here too.)
    """
    last = azimuths[-1]
    polars = [math.radians(90.0 - e) for e in elevations]
    relative = [math.radians((a - last) % 360.0) for a in azimuths]
    return polars, relative
