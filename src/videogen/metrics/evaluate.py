"""Every metric of one video: the weights-free ones always, the learned ones when their encoders load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from videogen.loading import resolve_device
from videogen.media import read_video
from videogen.metrics.embeddings import consistency
from videogen.metrics.encoders import (
    ClipEncoder,
    DinoEncoder,
    EncoderUnavailable,
    load_aesthetic_head,
    load_clip,
    load_dino,
)
from videogen.metrics.flow import flow_metrics
from videogen.metrics.pixels import TOO_SHORT, frame_ssim, input_fidelity, temporal_flickering
from videogen.metrics.results import METRICS, MetricResult, measured, skipped
from videogen.metrics.sources import EncoderSources

LEARNED = tuple(name for name, info in METRICS.items() if info.group == "learned")
NO_IMAGE = "not image-conditioned (no input image)"


class Evaluator:
    """Computes the metrics of videos, loading each encoder once, on first use.

    An encoder that fails to load is remembered, so every later video gets the same skip note
    without another attempt.
    """

    def __init__(self, sources: EncoderSources | None = None) -> None:
        self.sources = sources or EncoderSources()
        self.device = resolve_device(self.sources.device)  # a bad device fails now, not after a long run
        self._encoders: dict[str, object] = {}

    def evaluate_file(
        self, path: Path, prompt: str | None = None, image: np.ndarray | None = None
    ) -> dict[str, MetricResult]:
        """Metrics of a video file (mp4, webm, gif or a folder of frames)."""
        frames, fps = read_video(Path(path))
        return self.evaluate(frames, fps, prompt, image)

    def evaluate(
        self, frames: np.ndarray, fps: float, prompt: str | None = None, image: np.ndarray | None = None
    ) -> dict[str, MetricResult]:
        """Metrics of uint8 RGB frames (F, H, W, 3) played at ``fps``, in ``METRICS`` order.

        ``prompt`` enables text alignment; ``image`` (uint8 RGB, the input of an image-conditioned
        run) enables the first-frame fidelity and CLIP image similarity.
        """
        results = [
            temporal_flickering(frames),
            *flow_metrics(frames, fps),
            frame_ssim(frames),
            *input_fidelity(frames, image),
            *self._learned(frames, prompt, image),
        ]
        by_name = {result.name: result for result in results}
        return {name: by_name[name] for name in METRICS}

    def _learned(
        self, frames: np.ndarray, prompt: str | None, image: np.ndarray | None
    ) -> list[MetricResult]:
        if not self.sources.learned:
            return [skipped(name, "learned metrics turned off") for name in LEARNED]
        clip_frames = _Once(lambda: self._clip().images(frames))
        return [
            self._guard(
                "subject_consistency",
                lambda: _consistency("subject_consistency", frames, lambda: self._dino().images(frames)),
            ),
            self._guard(
                "background_consistency", lambda: _consistency("background_consistency", frames, clip_frames)
            ),
            self._guard("clip_text_alignment", lambda: self._text_alignment(clip_frames, prompt)),
            self._guard("clip_image_similarity", lambda: self._image_similarity(clip_frames, image)),
            self._guard("aesthetic_quality", lambda: self._aesthetic(frames, clip_frames)),
        ]

    @staticmethod
    def _guard(name: str, compute: Callable[[], MetricResult]) -> MetricResult:
        try:
            return compute()
        except EncoderUnavailable as exc:
            return skipped(name, str(exc))

    def _text_alignment(self, clip_frames: _Once, prompt: str | None) -> MetricResult:
        """CLIPSIM: mean over frames of cos(text, frame)."""
        if not (prompt or "").strip():
            return skipped("clip_text_alignment", "no prompt")
        embeds = clip_frames()
        similarities = embeds @ self._clip().text(prompt)
        return measured("clip_text_alignment", similarities.mean(), per_frame=_rounded(similarities))

    def _image_similarity(self, clip_frames: _Once, image: np.ndarray | None) -> MetricResult:
        """Mean over frames of cos(input image, frame) in CLIP space."""
        if image is None:
            return skipped("clip_image_similarity", NO_IMAGE)
        embeds = clip_frames()
        similarities = embeds @ self._clip().images(image[None])[0]
        return measured("clip_image_similarity", similarities.mean(), per_frame=_rounded(similarities))

    def _aesthetic(self, frames: np.ndarray, clip_frames: _Once) -> MetricResult:
        """VBench's aesthetic quality: LAION head on normalised CLIP ViT-L/14 embeddings / 10, frame mean."""
        head = self._load(
            "aesthetic_head", lambda: load_aesthetic_head(self.sources.aesthetic_head, self.device)
        )
        shared = self.sources.aesthetic_clip == self.sources.clip
        clip = (
            self._clip()
            if shared
            else self._load(
                "aesthetic_clip",
                lambda: load_clip(self.sources.aesthetic_clip, "--aesthetic-clip-model", self.device),
            )
        )
        if head.in_features != clip.dim:
            raise EncoderUnavailable(
                f"the aesthetic head takes {head.in_features}-dim embeddings but {clip.source} gives "
                f"{clip.dim}; it needs CLIP ViT-L/14 (--aesthetic-clip-model)"
            )
        embeds = torch.from_numpy(clip_frames() if shared else clip.images(frames)).to(self.device)
        with torch.no_grad():
            scores = head(embeds).squeeze(1).cpu().numpy() / 10.0
        return measured("aesthetic_quality", scores.mean(), per_frame=_rounded(scores))

    def _clip(self) -> ClipEncoder:
        return self._load("clip", lambda: load_clip(self.sources.clip, "--clip-model", self.device))

    def _dino(self) -> DinoEncoder:
        return self._load("dino", lambda: load_dino(self.sources.dino, "--dino-model", self.device))

    def _load(self, key: str, loader: Callable[[], object]) -> object:
        """The encoder under ``key``, loading it the first time; a failure is kept and re-raised."""
        if key not in self._encoders:
            try:
                self._encoders[key] = loader()
            except EncoderUnavailable as exc:
                self._encoders[key] = exc
        found = self._encoders[key]
        if isinstance(found, EncoderUnavailable):
            raise found
        return found


class _Once:
    """A value computed on first call and reused (CLIP frame embeddings serve three metrics)."""

    def __init__(self, compute: Callable[[], np.ndarray]) -> None:
        self._compute = compute
        self._value: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self._value is None:
            self._value = self._compute()
        return self._value


def _consistency(name: str, frames: np.ndarray, embed: Callable[[], np.ndarray]) -> MetricResult:
    """VBench's consistency of the frames' embeddings (computed only for videos of 2+ frames)."""
    if len(frames) < 2:
        return skipped(name, TOO_SHORT)
    return measured(name, consistency(embed()))


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 6) for value in values]
