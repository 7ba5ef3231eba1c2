"""A cheap preview of latents while they are denoised: a fixed linear map from latent channels to RGB.

Both families denoise in the latent space of Stable Diffusion's VAE (4 channels, scaled by 0.18215
to about unit variance: ModelScope and Zeroscope use that VAE, SVD the same encoder with a temporal
decoder). Its channels are close to a linear colour space: roughly brightness, green against
magenta, cyan against red, and yellow against blue. So one 4x3 matrix plus a bias gives a
recognisable, if blurry, colour image at the latent resolution without running the VAE.

Such factors come from a least-squares fit of VAE-decoded pixels (averaged over the patch each
latent pixel decodes to) against the latents of many images: Keturn's "Decoding latents to RGB
without upscaling" (Hugging Face forum, 2022) published the first fit for SD 1.x, and the
"approximate" previews of AUTOMATIC1111 ("Approx cheap") and ComfyUI ("latent2rgb") use such fits.
The factors below are ours: chosen within the spread of the published SD 1.x fits, rounded, and
expressed for pixels in [0, 1] (the fits give the VAE's [-1, 1] and have no offset, so the bias is
the middle of the range). The tests check the channels' colour directions listed above.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

#: rows: latent channels 0..3; columns: their contribution to R, G, B in [0, 1]
LATENT_RGB_FACTORS = (
    (0.16, 0.11, 0.13),
    (0.13, 0.20, 0.10),
    (-0.11, 0.09, 0.13),
    (-0.10, -0.13, -0.30),
)
#: R, G, B of an all-zero latent
LATENT_RGB_BIAS = (0.5, 0.5, 0.5)
#: the preview's longest side, in pixels, at most
MAX_PREVIEW_SIDE = 256
PREVIEW_MEDIA_TYPE = "image/jpeg"
JPEG_QUALITY = 85


def latents_to_rgb(frame: torch.Tensor) -> np.ndarray:
    """One frame's latents (channels, h, w) as uint8 RGB (h, w, 3) at the latent resolution.

    Latents noisier than a clean one (Euler starts at a spread of hundreds) are first brought back
    to unit spread, so early previews show noise rather than saturated blocks. Latent spaces other
    than Stable Diffusion's 4 channels (Wan's 16 or 48) have no fitted factors here: their three
    strongest directions in this frame (``principal_rgb``) show its structure in false colour.
    """
    if frame.ndim != 3:
        raise ValueError(
            f"latents: shape {tuple(frame.shape)}; a preview takes one frame of (channels, h, w)"
        )
    values = frame.detach().to("cpu", torch.float32)
    values = values / max(1.0, float(values.std()))
    pixels = values.permute(1, 2, 0)
    if values.shape[0] == len(LATENT_RGB_FACTORS):
        rgb = pixels @ torch.tensor(LATENT_RGB_FACTORS) + torch.tensor(LATENT_RGB_BIAS)
    else:
        rgb = principal_rgb(pixels)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def principal_rgb(pixels: torch.Tensor) -> torch.Tensor:
    """(h, w, channels) latents projected on their three principal directions, around 0.5, the
    strongest spread to two standard deviations either way and the others at the same scale (so
    directions that hold only noise stay faint); each direction's sign is fixed so its largest
    channel weight is positive, so the colours do not flip from one step to the next."""
    flat = pixels.reshape(-1, pixels.shape[-1])
    centred = flat - flat.mean(0)
    _, _, directions = torch.linalg.svd(centred, full_matrices=False)
    directions = directions[:3]
    largest = directions.gather(1, directions.abs().argmax(1, keepdim=True))
    directions = directions * largest.sign()
    projected = centred @ directions.T
    if projected.shape[1] < 3:  # fewer pixels or channels than three directions
        projected = torch.nn.functional.pad(projected, (0, 3 - projected.shape[1]))
    spread = projected[:, 0].std().clamp_min(1e-6)  # one scale: weak directions stay faint
    return (0.5 + projected / (4 * spread)).reshape(*pixels.shape[:2], 3)


def preview_image(latents: torch.Tensor, max_side: int = MAX_PREVIEW_SIDE) -> Image.Image:
    """The middle frame of one video's latents (1, channels, frames, h, w), as an RGB image whose
    longest side is at most ``max_side``: scaled up by a whole factor (nearest), or down by a stride."""
    if latents.ndim != 5 or latents.shape[0] != 1:
        raise ValueError(
            f"latents: shape {tuple(latents.shape)}; a preview takes one video's (1, channels, frames, h, w)"
        )
    frame = latents[0, :, latents.shape[2] // 2]
    longest = max(frame.shape[-2:])
    stride = -(-longest // max_side)
    rgb = latents_to_rgb(frame[:, ::stride, ::stride])
    image = Image.fromarray(rgb)
    factor = max(1, max_side // max(rgb.shape[:2]))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def preview_jpeg(latents: torch.Tensor, max_side: int = MAX_PREVIEW_SIDE) -> bytes:
    """``preview_image`` encoded as JPEG (PREVIEW_MEDIA_TYPE)."""
    buffer = io.BytesIO()
    preview_image(latents, max_side).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def data_url(image: bytes, media_type: str = PREVIEW_MEDIA_TYPE) -> str:
    """``data:image/jpeg;base64,...``: the image inline, for an ``<img src>`` or a JSON event."""
    return f"data:{media_type};base64,{base64.b64encode(image).decode('ascii')}"
