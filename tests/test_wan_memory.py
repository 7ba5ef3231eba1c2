"""Wan memory measures: VAE tiling chosen from free memory, latents kept when the decode fails, the
text encoder on the CPU, fp8 weight storage, group offload, and the weight-page release."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel

from videogen.errors import FieldError, UserError
from videogen.families.wan import WanEngine
from videogen.families.wan_memory import TILES, Tiling, decode_bytes, plan_tilings
from videogen.generate import decode_latents, generate, runtime_device
from videogen.request import Request
from videogen.sampling.progress import Reporter
from videogen.speedups import DEFAULT_SPEEDUPS, Speedups, prepare_modules
from videogen.testing import build_tiny_model

CPU = torch.device("cpu")
PROMPT = "a lighthouse in a storm"
SHAPE = {"num_frames": 9, "height": 64, "width": 64}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model("wan-t2v", tmp_path_factory.mktemp("wan-memory") / "wan-t2v")


@pytest.fixture(scope="module")
def engine(folder: Path) -> WanEngine:
    return WanEngine.load(folder, CPU, torch.float32, None)


def _request(folder: Path, **fields) -> Request:
    resolved = {"scheduler": "unipc", "steps": 2, "guidance": 5.0, "flow_shift": 3.0, **SHAPE, **fields}
    return Request(prompt=PROMPT, negative_prompt="blur", model=str(folder)).model_copy(update=resolved)


def _run(engine: WanEngine, request: Request, seed: int = 3):
    (video,) = engine.generate(request, [seed], Reporter(None, None, 1))
    return video


def _latents_shape(frames: int, height: int, width: int) -> tuple[int, ...]:
    return (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)


def test_whole_frames_when_they_fit_tiles_when_not(engine: WanEngine) -> None:
    """81 frames of 480x832 (Wan 2.1's default) in fp32: about 10 GB whole, under half in 256 px tiles."""
    vae = engine.vae
    shape = _latents_shape(81, 480, 832)
    whole = decode_bytes(vae, 81, 480, 832, None)
    tiled = decode_bytes(vae, 81, 480, 832, Tiling(*TILES[0]))
    assert 8 * 2**30 < whole < 12 * 2**30 and tiled < whole / 2
    assert plan_tilings(vae, shape, whole)[0] is None
    assert plan_tilings(vae, shape, whole - 1)[0] == Tiling(*TILES[0])
    assert plan_tilings(vae, shape, 2**20) == [Tiling(*TILES[-1])]  # nothing fits: the smallest tile
    assert plan_tilings(vae, shape, None)[0] is None  # free memory unknown: as before
    # a frame no larger than a tile is never tiled
    assert plan_tilings(vae, _latents_shape(9, 128, 128), 1) == [None]


def test_tiling_is_used_only_when_the_budget_is_short_and_is_recorded(engine, folder, monkeypatch) -> None:
    request = _request(folder, height=160, width=160)
    plain = _run(engine, request)
    assert plain.record["vae_tiling"] is None
    monkeypatch.setattr("videogen.families.wan.decode_budget", lambda device: 100 * 2**20)
    tiled = _run(engine, request)
    assert tiled.record["vae_tiling"] == {"tile": 128, "stride": 96}
    assert not engine.vae.use_tiling, "tiling is switched off again after the decode"
    assert tiled.frames.shape == plain.frames.shape
    # a tile's decoder sees no context beyond its edges, so near the seams (blended) frames differ;
    # the random tiny VAE is no smooth image prior: small on average, up to ~0.12 at a seam pixel
    difference = np.abs(tiled.frames - plain.frames)
    assert 0 < difference.mean() < 0.01 and difference.max() < 0.25


def test_out_of_memory_at_whole_frames_retries_tiled(engine, folder, monkeypatch) -> None:
    decode = AutoencoderKLWan.decode

    def short_of_memory(vae, latents, return_dict=True):
        if not vae.use_tiling:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return decode(vae, latents, return_dict=return_dict)

    monkeypatch.setattr(AutoencoderKLWan, "decode", short_of_memory)
    video = _run(engine, _request(folder, height=160, width=160))
    assert video.record["vae_tiling"] == {"tile": 128, "stride": 96}


def test_out_of_memory_at_decode_keeps_the_latents_and_says_how_to_decode(
    folder, tmp_path, monkeypatch
) -> None:
    """Without --save-latents too: the denoised latents are written, and `videogen decode` finishes."""

    def out_of_memory(vae, latents, return_dict=True):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    request = Request(
        model=str(folder), prompt=PROMPT, steps=2, seed=5, device="cpu", out_dir=str(tmp_path), **SHAPE
    )
    with monkeypatch.context() as patched:
        patched.setattr(AutoencoderKLWan, "decode", out_of_memory)
        with pytest.raises(UserError) as failed:
            generate(request)
    message = str(failed.value)
    (latents,) = tmp_path.glob("*.latents.safetensors")
    assert "ran out of memory" in message and f"videogen decode {latents}" in message
    assert not list(tmp_path.glob("*.mp4"))
    decoded = decode_latents(latents, {"out_dir": str(tmp_path / "again")})
    assert decoded.videos[0].files["mp4"].exists()
    # the same video as a run that could decode
    direct = generate(request.model_copy(update={"out_dir": str(tmp_path / "direct"), "formats": ["frames"]}))
    again = decode_latents(latents, {"out_dir": str(tmp_path / "frames"), "formats": ["frames"]})
    first, second = (sorted(Path(v.videos[0].files["frames"]).glob("*.png")) for v in (direct, again))
    assert [a.read_bytes() for a in first] == [b.read_bytes() for b in second]


def test_text_encoder_on_the_cpu_while_the_rest_is_on_the_device(folder) -> None:
    """On a (meta) accelerator the encoder's weights stay on the CPU and the embeddings reach the device."""
    speedups = replace(
        DEFAULT_SPEEDUPS, text_encoder_device="cpu", onednn_linear=False, release_weights=False
    )
    engine = WanEngine.load(folder, torch.device("meta"), torch.float32, None, speedups)
    assert {p.device.type for p in engine.text_encoder.parameters()} == {"cpu"}
    assert {p.device.type for p in engine.transformer.parameters()} == {"meta"}
    assert engine.encode_prompt(PROMPT).device.type == "meta"
    assert engine.applied["text_encoder_device"] == "cpu"
    default = WanEngine.load(
        folder, torch.device("meta"), torch.float32, None, replace(speedups, text_encoder_device="auto")
    )
    assert {p.device.type for p in default.text_encoder.parameters()} == {"meta"}


def test_text_encoder_on_the_cpu_changes_nothing_on_a_cpu_run(engine, folder) -> None:
    kept = WanEngine.load(
        folder, CPU, torch.float32, None, replace(DEFAULT_SPEEDUPS, text_encoder_device="cpu")
    )
    request = _request(folder)
    assert np.array_equal(_run(kept, request).frames, _run(engine, request).frames)


def test_fp8_weights_are_stored_in_float8_and_stay_close(engine, folder) -> None:
    """float8 e4m3 keeps 3 mantissa bits (relative rounding up to 1/16 per weight); over two guided
    steps of the tiny random transformer the final latents move by a few percent of their spread."""
    fp8 = WanEngine.load(folder, CPU, torch.float32, None, replace(DEFAULT_SPEEDUPS, weights_dtype="fp8"))
    stored = {p.dtype for name, p in fp8.transformer.named_parameters() if ".ffn." in name}
    assert stored == {torch.float8_e4m3fn}
    assert fp8.dtype == torch.float32 and fp8.applied["weights_dtype"] == "fp8"
    request = _request(folder, save_latents=True)
    ours, exact = _run(fp8, request), _run(engine, request)
    difference = (ours.latents["latents"] - exact.latents["latents"]).abs()
    spread = exact.latents["latents"].std()
    assert 0 < difference.max() < 0.1 * spread


def test_group_offload_is_refused_off_cuda() -> None:
    with pytest.raises(FieldError, match="offload: 'group' is not allowed; offloading needs a CUDA device"):
        runtime_device(Request(model="wan2.1-t2v-1.3b", device="cpu", offload="group"))


def test_group_offload_hooks_leave_the_output_unchanged(engine, folder) -> None:
    """The hooks themselves, onloading to the CPU (the refusal above is the front door's)."""
    offloaded = WanEngine.load(folder, CPU, torch.float32, None, Speedups(offload="group"))
    assert offloaded.applied["offload"] == "group"
    request = _request(folder)
    assert np.array_equal(_run(offloaded, request).frames, _run(engine, request).frames)


def test_weight_pages_of_the_transformer_are_released_on_the_cpu(tmp_path: Path) -> None:
    """As for the UNets: each transformer block drops its memory-mapped weight pages after it ran.

    The tiny test model's tensors are smaller than a page, so a transformer with page-sized weights is
    saved and loaded here; QKV fusion stays off because fused projections are new (anonymous) memory.
    """
    WanTransformer3DModel(
        num_attention_heads=2, attention_head_dim=64, in_channels=16, out_channels=16, text_dim=64,
        freq_dim=64, ffn_dim=512, num_layers=2,
    ).save_pretrained(tmp_path)  # fmt: skip
    transformer = WanTransformer3DModel.from_pretrained(tmp_path)
    weights = sum(p.numel() * p.element_size() for p in transformer.parameters())
    applied = prepare_modules([transformer], transformer, CPU, replace(DEFAULT_SPEEDUPS, fused_qkv=False))
    hooked = {name for name, module in transformer.named_modules() if module._forward_hooks}
    assert {"blocks.0", "blocks.1"} <= hooked
    assert applied["released_weight_mb"] * 2**20 > 0.9 * weights
