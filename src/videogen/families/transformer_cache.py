"""First Block Cache on a family's transformers (diffusers' hook), set for each video and counted.

diffusers' First Block Cache runs a transformer's first block on every call and compares its residual
with the one of the previous call in the same cache context (Wan's separate "cond" and "uncond"
calls, LTX-Video's one batched "cond_uncond" call): when the mean change, relative to that residual,
is at most ``threshold``, the other blocks are skipped and the tail's residual of the last full call
is added instead. Skipping is decided from the data, so how many calls run in full is counted, not
computed.

The engine is kept between jobs: ``configure`` runs before each video, applies the hooks at the
request's threshold (again at a new threshold), removes them when a request asks for no cache (None
or 0), and clears their state, so no video reuses features of another.
"""

from __future__ import annotations

from collections.abc import Callable

from diffusers.hooks import FirstBlockCacheConfig, HookRegistry
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def wan_tail(model: nn.Module) -> nn.Module:
    """The feed-forward of a Wan transformer's last block."""
    return model.blocks[-1].ffn


def ltx_tail(model: nn.Module) -> nn.Module:
    """The feed-forward of an LTX-Video transformer's last block."""
    return model.transformer_blocks[-1].ff


class TransformerCache:
    """The cache setting of one engine's transformers and the evaluations of the current video."""

    def __init__(self, models: list[ModelMixin], tail: Callable[[nn.Module], nn.Module] = wan_tail) -> None:
        """``tail`` finds a model's last block's feed-forward, which runs only in a full call."""
        self.models = models
        self.threshold: float | None = None
        self.calls = 0
        self.full = 0
        for model in models:
            model.register_forward_pre_hook(self._count_call)
            # the tail block's feed-forward runs only when the cache lets the blocks run
            tail(model).register_forward_pre_hook(self._count_full)

    def _count_call(self, module: object, args: tuple) -> None:
        self.calls += 1

    def _count_full(self, module: object, args: tuple) -> None:
        self.full += 1

    def configure(self, threshold: float | None) -> None:
        """Cache at ``threshold`` from a clean state (no cache for None or 0); reset the counts."""
        threshold = threshold or None
        if threshold != self.threshold:
            for model in self.models:
                if model.is_cache_enabled:
                    model.disable_cache()
                if threshold is not None:
                    model.enable_cache(FirstBlockCacheConfig(threshold=threshold))
            self.threshold = threshold
        for model in self.models:
            HookRegistry.check_if_exists_or_initialize(model).reset_stateful_hooks()
        self.calls = self.full = 0

    def record(self) -> dict[str, float | int]:
        """For the sidecar: the threshold, transformer calls run in full and those the cache shortened
        (the first block only); a guided Wan step makes two calls, an LTX-Video step one."""
        return {
            "cache_threshold": self.threshold or 0.0,
            "transformer_evaluations": self.full,
            "transformer_skipped_evaluations": self.calls - self.full,
        }
