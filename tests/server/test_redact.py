"""Job records name files relative to the data directory, never by absolute server paths."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path

from server_helpers import SMALL, png_bytes

from videogen.server.redact import redact_paths
from videogen.server.settings import Settings


def test_server_paths_become_relative_or_neutral_names(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, models_dir=tmp_path / "models")
    message = (
        f"image: '{data}/uploads/ab.png' is not readable; no model at {tmp_path}/models/tiny-unet3d; "
        f"data in {data}. {data}-old/x and {data}.db are other files"
    )
    assert redact_paths(message, settings) == (
        "image: 'uploads/ab.png' is not readable; no model at <models>/tiny-unet3d; "
        f"data in <data>. {data}-old/x and {data}.db are other files"
    )
    relative = Settings(data_dir=Path("data"))  # also the absolute spelling of a relative data dir
    assert redact_paths(f"{Path('data').resolve()}/uploads/ab.png", relative) == "uploads/ab.png"


def test_a_failed_jobs_error_names_its_input_relative_to_the_data_dir(start_service, settings) -> None:
    submitter = start_service(settings)  # no worker: the job waits while its input goes missing
    upload = submitter.upload(io.BytesIO(png_bytes(64, 64)), "in.png")
    job, _ = submitter.submit({**SMALL, "steps": 2, "image": upload.id})
    (stored,) = settings.uploads_dir.glob("*/*")
    stored.unlink()

    worker = start_service(replace(settings, run_worker=True))
    deadline = time.monotonic() + 60
    while (failed := worker.get(job.id)).status != "failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failed.status == "failed" and f"uploads/{upload.id}/in.png" in failed.error
    assert str(settings.data_dir.resolve()) not in failed.error and str(settings.data_dir) not in failed.error
