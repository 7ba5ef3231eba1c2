"""Resident memory of CPU weights: each block gives its weight pages back once it has run.

On the CPU, weights load memory-mapped from their safetensors files, so a parameter's bytes are
pages of the file, and every page a forward pass touches stays in this process's resident set:
after one UNet step the whole model is resident (5.3 GB for ModelScope's UNet in fp32), next to the
text encoder and the VAE. Here each block drops its pages once it has run (``madvise`` with
MADV_DONTNEED). The kernel keeps them in its page cache, so the next step maps them back in without
reading the disk, at a cost that BENCHMARKS.md measures as lost in the noise; peak resident memory
becomes the largest block plus the activations. Under memory pressure the kernel may evict those
cached pages and read them again from disk: slower, but it does not run out of memory.

Only byte ranges inside file-backed mappings are released (never anonymous memory, which MADV_DONTNEED
would zero). That relies on one invariant: weights are not written in place after loading (a page
written in place would return to the file's content). Linux only; elsewhere nothing is released.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import mmap
import sys
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

MADV_DONTNEED = 4
PAGE = mmap.PAGESIZE
#: Modules with more weight bytes than this are split into their children, so that no single block
#: (ModelScope's deepest up block holds 1.4 GB) sets the peak.
MAX_UNIT_BYTES = 128 * 2**20
MAPS = Path("/proc/self/maps")


def _madvise() -> ctypes._CFuncPtr | None:
    if not sys.platform.startswith("linux"):
        return None
    function = ctypes.CDLL(None, use_errno=True).madvise
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_MADVISE = _madvise()


def file_mappings(maps: Path = MAPS) -> list[tuple[int, int]]:
    """(start, end) of every file-backed mapping of this process, sorted by start."""
    if _MADVISE is None or not maps.exists():
        return []
    found = []
    for line in maps.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            start, end = (int(value, 16) for value in parts[0].split("-"))
            found.append((start, end))
    return sorted(found)


def page_ranges(tensors: Iterable[torch.Tensor], mappings: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(address, length) of the whole pages of ``tensors`` that lie inside one of ``mappings``."""
    starts = [start for start, _ in mappings]
    ranges = set()
    for tensor in tensors:
        if tensor.device.type != "cpu" or tensor.numel() == 0:
            continue
        first, last = tensor.data_ptr(), tensor.data_ptr() + tensor.numel() * tensor.element_size()
        index = bisect.bisect_right(starts, first) - 1
        if index < 0 or last > mappings[index][1]:
            continue
        aligned_first, aligned_last = -(-first // PAGE) * PAGE, last // PAGE * PAGE
        if aligned_last > aligned_first:
            ranges.add((aligned_first, aligned_last - aligned_first))
    return sorted(ranges)


class WeightPages:
    """The file-backed pages of one block's weights, which can be dropped from this process."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges
        self.nbytes = sum(length for _, length in ranges)

    def release(self) -> None:
        for address, length in self.ranges:
            if _MADVISE(address, length, MADV_DONTNEED) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"madvise(MADV_DONTNEED) failed on weight pages at {address:#x}")


def _weights(module: nn.Module, recurse: bool) -> list[torch.Tensor]:
    return [*module.parameters(recurse=recurse), *module.buffers(recurse=recurse)]


def _units(module: nn.Module, max_bytes: int, top: bool = True) -> Iterable[nn.Module]:
    """The modules whose forward releases their pages: small enough, and actually called.

    The model itself is always split (a VAE is used through ``decode``, never ``forward``), and so
    are containers, which have no forward of their own.
    """
    size = sum(t.numel() * t.element_size() for t in _weights(module, recurse=True))
    children = list(module.children())
    container = isinstance(module, (nn.ModuleList, nn.ModuleDict))
    if not children or (size <= max_bytes and not top and not container):
        yield module
        return
    for child in children:
        yield from _units(child, max_bytes, top=False)


def release_pages_after_forward(model: nn.Module, max_unit_bytes: int = MAX_UNIT_BYTES) -> int:
    """Make every block of ``model`` drop its file-backed weight pages after each forward.

    Returns the bytes covered; 0 where nothing is memory-mapped (weights on a GPU, converted to
    another dtype, or not on Linux), in which case no hook is added.
    """
    mappings = file_mappings()
    if not mappings:
        return 0
    covered = 0
    for unit in _units(model, max_unit_bytes):
        pages = WeightPages(page_ranges(_weights(unit, recurse=True), mappings))
        if pages.nbytes:
            unit.register_forward_hook(lambda module, args, output, pages=pages: pages.release())
            covered += pages.nbytes
    log.debug("%s releases %.0f MB of weight pages after each block", type(model).__name__, covered / 2**20)
    return covered
