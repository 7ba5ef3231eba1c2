"""Shared fixtures: tiny random-weight models and an isolated, unreachable Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import constants

from videogen.testing import build_tiny_model

UNREACHABLE_HUB = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def isolated_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the user's Hugging Face cache or the network."""
    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE_HUB)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    return cache


@pytest.fixture(scope="session")
def tiny_unet3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ModelScope-layout model folder, built once per test session."""
    return build_tiny_model("unet3d", tmp_path_factory.mktemp("models") / "tiny-unet3d")


@pytest.fixture(scope="session")
def tiny_svd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny StableVideoDiffusionPipeline-layout model folder, built once per test session."""
    return build_tiny_model("svd", tmp_path_factory.mktemp("models") / "tiny-svd")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for the session (as CI's machine has), offline like the tests."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": UNREACHABLE_HUB, "OMP_NUM_THREADS": "1"}
        },
    )
    yield ray
    ray.shutdown()
