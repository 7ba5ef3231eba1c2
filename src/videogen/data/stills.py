"""The still images videogen ships for image-to-video comparisons, drawn here with numpy alone.

The PNGs in ``stills/`` are this module's output (``python -m videogen.data.stills DIR`` writes
them again); a test checks they still match. Shapes have soft, anti-aliased edges so video
models see plausible photographs of simple scenes rather than hard synthetic patterns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 512, 288


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel centre coordinates, x and y, each (HEIGHT, WIDTH)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    return x + 0.5, y + 0.5


def _soft(distance: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Coverage of a shape from a signed distance (negative inside), anti-aliased over ``width`` px."""
    return np.clip(0.5 - distance / width, 0.0, 1.0)


def _vertical(
    top: tuple[float, ...], bottom: tuple[float, ...], y: np.ndarray, y0: float, y1: float
) -> np.ndarray:
    t = np.clip((y - y0) / (y1 - y0), 0.0, 1.0)[..., None]
    return np.asarray(top) * (1 - t) + np.asarray(bottom) * t


def _paint(image: np.ndarray, coverage: np.ndarray, colour: np.ndarray | tuple[float, ...]) -> None:
    image[:] = image * (1 - coverage[..., None]) + np.asarray(colour) * coverage[..., None]


def sunset_lake() -> np.ndarray:
    """A low sun over two mountain ridges, reflected in a rippled lake."""
    x, y = _grid()
    horizon = 190.0
    image = _vertical((70, 40, 110), (250, 150, 70), y, 0, horizon)
    _paint(image, _soft(np.hypot(x - 330, y - 92) - 26), (255, 225, 150))
    far = horizon - 60 - 25 * np.sin(x / 53.0) - 12 * np.sin(x / 17.0 + 1.0)
    _paint(image, _soft(far - y) * (y < horizon), (120, 70, 110))
    near = horizon - 25 - 20 * np.sin(x / 37.0 + 2.0) - 6 * np.sin(x / 9.0)
    _paint(image, _soft(near - y) * (y < horizon), (60, 35, 70))
    water = y >= horizon
    mirrored = _vertical((70, 40, 110), (250, 150, 70), 2 * horizon - y, 0, horizon) * 0.75
    ripple = 0.93 + 0.07 * np.sin(y * 1.7 + 3 * np.sin(x / 23.0))
    image[water] = (mirrored * ripple[..., None])[water]
    glint = _soft(np.abs(x - 330 + 4 * np.sin(y)) - 18 * (1 - (y - horizon) / 120)) * water
    _paint(image, glint * 0.6, (255, 220, 150))
    return image


def red_ball() -> np.ndarray:
    """A shaded red ball with a soft shadow on a checkerboard floor."""
    x, y = _grid()
    horizon = 120.0
    image = _vertical((200, 215, 230), (235, 235, 240), y, 0, horizon)
    depth = np.maximum(y - horizon, 1e-3)
    u, v = (x - WIDTH / 2) / depth * 40, 4000 / depth
    checks = (np.floor(u / 20) + np.floor(v / 20)) % 2
    floor = np.where(checks[..., None] > 0, (90, 90, 100), (225, 225, 215))
    fade = np.clip((y - horizon) / 60, 0, 1)[..., None]
    image = np.where((y > horizon)[..., None], floor * fade + image * (1 - fade), image)
    _paint(image, _soft(np.hypot((x - 270) / 1.6, (y - 250) / 0.5) - 30, 14) * 0.5, (40, 40, 50))
    cx, cy, radius = 256.0, 185.0, 62.0
    nx, ny = (x - cx) / radius, (y - cy) / radius
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    light = np.clip(-0.45 * nx - 0.6 * ny + 0.66 * nz, 0, 1)
    ball = np.asarray((215, 30, 35)) * (0.25 + 0.75 * light[..., None]) + 255 * light[..., None] ** 40
    _paint(image, _soft(np.hypot(x - cx, y - cy) - radius), np.clip(ball, 0, 255))
    return image


def city_night() -> np.ndarray:
    """A skyline with lit windows under a moon and stars."""
    x, y = _grid()
    image = _vertical((10, 15, 45), (40, 50, 95), y, 0, HEIGHT)
    rng = np.random.default_rng(7)
    for sx, sy in zip(rng.uniform(0, WIDTH, 70), rng.uniform(0, 150, 70), strict=True):
        _paint(image, _soft(np.hypot(x - sx, y - sy) - 0.8), (235, 235, 255))
    _paint(image, _soft(np.hypot(x - 420, y - 60) - 22), (245, 240, 215))
    left = 0.0
    while left < WIDTH:
        width, height = rng.uniform(30, 70), rng.uniform(60, 190)
        top = HEIGHT - height
        body = np.maximum(np.maximum(left - x, x - left - width), top - y)
        _paint(image, _soft(body), rng.uniform(20, 45, 3))
        inside = (x > left + 4) & (x < left + width - 4) & (y > top + 6)
        lit = ((x - left) % 10 < 5) & ((y - top) % 14 < 7) & inside
        cells = np.floor((x - left) / 10) * 31 + np.floor((y - top) / 14)
        on = np.sin(cells * 12.9898 + left) * 43758.5453 % 1 > 0.45
        _paint(image, (lit & on).astype(float), (250, 210, 120))
        left += width + rng.uniform(2, 8)
    return image


def sailboat() -> np.ndarray:
    """A sailboat on a choppy sea under a bright sky."""
    x, y = _grid()
    horizon = 150.0
    image = _vertical((110, 170, 230), (200, 225, 245), y, 0, horizon)
    _paint(image, _soft(np.hypot(x - 90, y - 50) - 20, 3), (255, 250, 220))
    sea = y >= horizon + 3 * np.sin(x / 11.0)
    waves = 0.8 + 0.2 * np.sin(x / 7.0 + 9 * np.sin(y / 5.0)) * np.clip((y - horizon) / 80, 0, 1)
    image[sea] = (_vertical((40, 90, 140), (15, 50, 90), y, horizon, HEIGHT) * waves[..., None])[sea]
    hull = np.maximum(np.abs(x - 300) - (70 - (y - 185) * 0.8), np.maximum(185 - y, y - 205))
    _paint(image, _soft(hull), (120, 60, 35))
    mast = np.maximum(np.abs(x - 300) - 2, np.maximum(70 - y, y - 186))
    _paint(image, _soft(mast), (70, 45, 30))
    main_sail = np.maximum(np.maximum(x - 296, (300 - x) - (y - 75) * 0.55), y - 178)
    _paint(image, _soft(main_sail), (245, 245, 235))
    jib = np.maximum(np.maximum(304 - x, (x - 304) - (y - 90) * 0.5), y - 178)
    _paint(image, _soft(jib), (230, 90, 70))
    return image


def flower() -> np.ndarray:
    """A single flower centred on white, the kind of object input orbit models expect."""
    x, y = _grid()
    image = np.full((HEIGHT, WIDTH, 3), 255.0)
    cx, cy = 256.0, 140.0
    stem = np.maximum(np.abs(x - cx - 0.08 * (y - cy)) - 3, np.maximum(cy - y, y - 280))
    _paint(image, _soft(stem), (60, 130, 60))
    leaf = np.hypot((x - 280) / 2.2, y - 230) - 12
    _paint(image, _soft(leaf), (80, 160, 70))
    angle, radius = np.arctan2(y - cy, x - cx), np.hypot(x - cx, y - cy)
    petals = radius - (45 + 25 * np.abs(np.cos(3 * angle)))
    _paint(image, _soft(petals), (235, 110, 160))
    _paint(image, _soft(petals + 25, 12) * 0.35, (255, 200, 220))
    _paint(image, _soft(radius - 18), (250, 200, 50))
    return image


STILLS: dict[str, Callable[[], np.ndarray]] = {
    "city-night": city_night,
    "flower": flower,
    "red-ball": red_ball,
    "sailboat": sailboat,
    "sunset-lake": sunset_lake,
}


def render_still(name: str) -> np.ndarray:
    """The still ``name`` as uint8 RGB (HEIGHT, WIDTH, 3)."""
    return np.clip(np.round(STILLS[name]()), 0, 255).astype(np.uint8)


def write_stills(folder: Path) -> list[Path]:
    """Write every still as ``<name>.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in STILLS:
        path = folder / f"{name}.png"
        Image.fromarray(render_still(name)).save(path, optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_stills(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "stills")):
        print(written)
