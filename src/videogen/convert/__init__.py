"""Converters from original single-file checkpoints to videogen's diffusers layout."""

from videogen.convert.sv3d import convert_sv3d

__all__ = ["convert_sv3d"]
