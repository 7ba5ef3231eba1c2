"""videogen: text, image and video to video with open diffusion models."""

__version__ = "0.1.0"
