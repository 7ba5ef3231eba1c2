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
    to unit spread, so early previews show noise rather than saturated blocks.
    """
    if frame.ndim != 3 or frame.shape[0] != len(LATENT_RGB_FACTORS):
        raise ValueError(
            f"latents: shape {tuple(frame.shape)}; a preview takes one frame of "
            f"({len(LATENT_RGB_FACTORS)}, h, w)"
        )
    values = frame.detach().to("cpu", torch.float32)
    values = values / max(1.0, float(values.std()))
    factors = torch.tensor(LATENT_RGB_FACTORS)
    rgb = values.permute(1, 2, 0) @ factors + torch.tensor(LATENT_RGB_BIAS)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


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
