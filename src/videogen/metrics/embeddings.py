"""VBench's consistency formula on per-frame embeddings (DINO for subjects, CLIP for backgrounds)."""

from __future__ import annotations

import numpy as np


def consistency(features: np.ndarray) -> float:
    """Mean over frames i > 1 of (cos(f_i, f_i-1) + cos(f_i, f_1)) / 2, each cosine clipped at 0.

    ``features`` is (frames, dim) with at least two frames. Identical frames give exactly 1.
    """
    if len(features) < 2:
        raise ValueError(f"consistency needs at least 2 frames, got {len(features)}")
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    to_previous = np.clip(np.sum(unit[1:] * unit[:-1], axis=1), 0.0, None)
    to_first = np.clip(unit[1:] @ unit[0], 0.0, None)
    # Rounding can push the cosine of a vector with itself a hair above 1.
    return float(np.clip(np.mean((to_previous + to_first) / 2), 0.0, 1.0))
