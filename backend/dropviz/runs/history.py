"""Read a stored run's past: any step's masks and metrics, and its weights.

Masks and metrics come straight from the step file, so scrubbing through
them costs one file read per request. Weights are rebuilt on request from
the nearest checkpoint (storage/replay.py). A small cache keeps the last
rebuilt trainer of each recently replayed run, so stepping forward from
the previous request re-runs only the steps in between.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from dropviz.runs.run import Run
from dropviz.storage.recorder import RunRecorder
from dropviz.storage.replay import nearest_checkpoint, roll_forward, trainer_at
from dropviz.storage.stepfile import StoredStep
from dropviz.training.mlp import Params
from dropviz.training.trainer import Trainer

REPLAY_CACHE_RUNS = 4  # rebuilt trainers kept, one per run, least recently used out


class StepNotRecordedError(LookupError):
    """A step that the run has not taken, or that was not stored."""


class NotStoredError(RuntimeError):
    """A run without storage: the server runs without a state folder."""


_cache: OrderedDict[str, Trainer] = OrderedDict()
_cache_lock = threading.Lock()


def recorded_step_count(run: Run) -> int:
    """Return how many steps of the run can be read back."""
    return run.trainer.step_count


def require_recorder(run: Run) -> RunRecorder:
    """Return the run's recorder; raise NotStoredError for a run without one."""
    if run.recorder is None:
        raise NotStoredError(f"run {run.id} is not stored, so its past is unavailable")
    return run.recorder


def _check_range(run: Run, first: int, count: int) -> None:
    recorded = recorded_step_count(run)
    if first < 0 or count < 1 or first + count > recorded:
        raise StepNotRecordedError(
            f"Run {run.id} has recorded steps 0..{recorded - 1}; steps "
            f"{first}..{first + count - 1} are outside them."
            if recorded
            else f"Run {run.id} has no steps yet; start or step it first."
        )


def _ensure_written(run: Run, recorder: RunRecorder, step_count: int) -> None:
    # Steps still in the writer's queue are not in the file yet.
    if recorder.store.step_file(run.id).step_count < step_count:
        recorder.sync()


def read_steps(run: Run, first: int, count: int) -> list[StoredStep]:
    """Return the stored records of steps first .. first + count - 1."""
    recorder = require_recorder(run)
    _check_range(run, first, count)
    _ensure_written(run, recorder, first + count)
    step_file = recorder.store.step_file(run.id)
    return [step_file.layout.decode(r) for r in step_file.read_records(first, count)]


def weights_after(run: Run, step: int) -> Params:
    """Return a copy of the weights right after `step` (0-based) was trained."""
    recorder = require_recorder(run)
    _check_range(run, step, 1)
    target = step + 1
    _ensure_written(run, recorder, target)
    store = recorder.store
    checkpoints = store.checkpoint_steps(run.id)
    with _cache_lock:
        cached = _cache.pop(run.id, None)
    base = nearest_checkpoint(checkpoints, target)
    if cached is not None and base <= cached.step_count <= target:
        trainer = cached
        roll_forward(trainer, store.step_file(run.id), target)
    else:
        trainer = trainer_at(
            store, run.id, run.config, run.trainer.dataset, checkpoints, target
        )
    params = trainer.params.copy()
    with _cache_lock:
        _cache[run.id] = trainer
        while len(_cache) > REPLAY_CACHE_RUNS:
            _cache.popitem(last=False)
    return params


def forget(run_id: str) -> None:
    """Drop a deleted run's cached trainer."""
    with _cache_lock:
        _cache.pop(run_id, None)
