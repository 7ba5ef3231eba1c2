"""Model comparison: run a grid of models x inputs x seeds, measure every video, write a report.

``run_compare(CompareSettings(...), out)`` makes the videos through ``generate`` (resuming an
interrupted run) and ``run_from_dir(folder, out)`` evaluates videos made elsewhere; both write
``out/index.html``, ``results.csv`` and ``results.json``. Names are imported on first use, so
the command line can register the commands without loading the engines.
"""

from __future__ import annotations

from videogen.lazy import lazy_getattr

_EXPORTS = {
    "CompareSettings": "runner",
    "CompareResult": "runner",
    "run_compare": "runner",
    "run_from_dir": "fromdir",
    "find_videos": "fromdir",
    "CellEvent": "events",
    "GridInput": "inputs",
    "image_files": "inputs",
    "read_prompt_file": "inputs",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
