"""Memory readings: free memory on a device, and peaks of this process."""

from __future__ import annotations

import mmap
import resource
import sys
from pathlib import Path

import torch

MEMINFO = Path("/proc/meminfo")
STATM = Path("/proc/self/statm")
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def free_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on ``device``: CUDA's free memory, else the system's available
    memory (None where neither can be read)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if MEMINFO.exists():
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's VmHWM where there is one: ru_maxrss also counts the parent's resident memory at the
    fork that started this process, so a child of a large process would report the parent's peak.
    """
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> bool:
    """Restart this process's peak resident memory from its resident memory now; False where that
    cannot be done, and ``peak_rss_mb`` keeps counting from the start of the process.

    Linux resets VmHWM when "5" is written to /proc/self/clear_refs (since 4.0); ru_maxrss, the
    fallback elsewhere, cannot be reset.
    """
    if not STATUS.exists():
        return False
    try:
        with CLEAR_REFS.open("w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_vram_mb(device: torch.device) -> float | None:
    """Peak allocated CUDA memory since the last reset, in MiB; None off CUDA."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def resident_mb() -> float:
    """This process's resident memory now, in MiB (its peak where /proc is missing)."""
    if not STATM.exists():
        return peak_rss_mb()
    return int(STATM.read_text().split()[1]) * mmap.PAGESIZE / 2**20
