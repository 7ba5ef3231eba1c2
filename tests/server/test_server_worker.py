"""The worker in-process: order, engine reuse, cancel between steps, failures with their reasons,
and a clean stop that puts the running job back in the queue."""

from __future__ import annotations

import time
from dataclasses import replace

import av
import pytest
import torch
from server_helpers import SMALL

from videogen import engines
from videogen.errors import FieldError
from videogen.server import executors
from videogen.server.schemas import JobOut
from videogen.server.worker import OUT_OF_MEMORY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def service(start_service, settings):
    return start_service(replace(settings, run_worker=True))


@pytest.fixture
def engine_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every engine the cache loads (reuse loads nothing)."""
    loads: list[tuple] = []
    real = engines.load_engine

    def counting(*args):
        loads.append(args)
        return real(*args)

    monkeypatch.setattr(engines, "load_engine", counting)
    return loads


def wait(service, job_id: str, statuses: set[str], step: int = 0, timeout: float = 60) -> JobOut:
    """Poll until the job is in one of ``statuses`` (and, if running, past denoising ``step``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.get(job_id)
        progress = job.progress
        if job.status in statuses and (step == 0 or (progress and progress.step >= step)):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id}: {service.get(job_id)}")


def fail_once(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """The next generation raises ``error``; later ones run normally."""
    real = executors.generate

    def failing(*args, **kwargs):
        monkeypatch.setattr(executors, "generate", real)
        raise error

    monkeypatch.setattr(executors, "generate", failing)


def test_jobs_run_in_order_on_one_loaded_engine(service, engine_loads) -> None:
    ids = [service.submit({**SMALL, "steps": 2, "seed": seed})[0].id for seed in range(3)]
    jobs = [wait(service, job_id, {"succeeded"}) for job_id in ids]
    assert [job.started_at for job in jobs] == sorted(job.started_at for job in jobs)
    assert len(engine_loads) == 1
    (video,) = jobs[0].outputs
    mp4 = service.settings.job_dir(ids[0]) / video.files["mp4"]
    with av.open(str(mp4)) as container:
        assert container.streams.video[0].frames == 8
    assert video.metadata["seed"] == 0 and video.metadata["request"]["steps"] == 2
    assert jobs[0].generation_seconds > 0 and jobs[0].attempts == 1


def test_preloaded_models_are_loaded_before_the_first_job(start_service, settings, engine_loads) -> None:
    service = start_service(replace(settings, run_worker=True, preload=("tiny-unet3d",)))
    assert len(engine_loads) == 1
    job_id = service.submit({**SMALL, "steps": 2})[0].id
    assert wait(service, job_id, {"succeeded"}).status == "succeeded"
    assert len(engine_loads) == 1


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: not enough memory"),
        RuntimeError("MPS backend out of memory"),
    ],
)
def test_out_of_memory_is_reported_with_the_setting_to_lower(service, monkeypatch, error) -> None:
    fail_once(monkeypatch, error)
    job_id = service.submit({**SMALL, "steps": 2})[0].id
    assert wait(service, job_id, {"failed"}).error == OUT_OF_MEMORY
    assert not service.settings.job_dir(job_id).exists()


def test_an_unexpected_error_fails_the_job_and_the_worker_goes_on(service, monkeypatch) -> None:
    fail_once(monkeypatch, ValueError("boom"))
    failed, ok = (service.submit({**SMALL, "steps": 2, "seed": seed})[0].id for seed in (1, 2))
    assert wait(service, failed, {"failed"}).error == "internal error: ValueError: boom"
    assert wait(service, ok, {"succeeded"}).status == "succeeded"


def test_missing_weights_are_refused_at_submit_with_the_way_out(service) -> None:
    with pytest.raises(FieldError) as caught:
        service.submit({**SMALL, "model": "modelscope-t2v", "steps": 2})
    assert caught.value.field == "model"
    assert "not in the Hugging Face cache" in str(caught.value) and "videogen download" in str(caught.value)
    assert service.list().jobs == []


def test_cancel_stops_a_running_job_between_steps(service) -> None:
    job_id = service.submit({**SMALL, "steps": 200})[0].id
    wait(service, job_id, {"running"}, step=2)
    requested = service.cancel(job_id)
    assert requested.status == "running" and requested.cancel_requested
    cancelled = wait(service, job_id, {"cancelled"}, timeout=10)
    assert cancelled.progress.step < 200 and cancelled.outputs == []
    assert not service.settings.job_dir(job_id).exists()


def test_stopping_the_server_puts_the_running_job_back_in_the_queue(service) -> None:
    job_id = service.submit({**SMALL, "steps": 200})[0].id
    wait(service, job_id, {"running"}, step=2)
    service.stop()
    job = service.get(job_id)
    assert job.status == "queued" and job.attempts == 0 and not job.cancel_requested
