"""The training timeline: kept states stay bounded and cover the run; a branch at a past step reproduces the
original trajectory exactly (same settings) or continues from it with new ones; edits are never replayed."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from models import scenes
from models.signals import load_signal
from models.timeline import Timeline
from models.trainer_state import capture_runs
from models.worker import TrainingWorker

from worker_helpers import wait_for_snapshot

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCENE = replace(scenes.Scene(), field=replace(scenes.Scene().field, width=16),
                train=replace(scenes.Scene().train, lr=1e-3, batch_size=64))


def _trainers(scene=SCENE, size=16):
    return scene.build(load_signal("camera", size))


def test_timeline_stays_bounded_and_covers_the_run():
    trainers = _trainers()
    timeline = Timeline(every=2, capacity=6)
    for _ in range(60):
        for _, trainer in trainers:
            trainer.step()
        if timeline.due(trainers[0][1].step_count):
            timeline.record(capture_runs(trainers))
    steps = timeline.steps
    assert len(steps) <= 6 and steps[0] == 1 and list(steps) == sorted(steps)
    assert timeline.every > 2 and steps[-1] > 60 - timeline.every  # the newest is at most one spacing behind


def test_recorded_states_are_not_changed_by_later_training():
    trainers = _trainers()
    timeline = Timeline(every=1)
    for _, trainer in trainers:
        trainer.step()
    timeline.record(capture_runs(trainers))
    kept = {k: v.clone() for k, v in timeline.entries[0].state.tensors.items()}
    worker = TrainingWorker(load_signal("camera", 16), lambda: trainers, start_running=False).start()
    try:
        worker.branch(1)
        worker.step(3)
        wait_for_snapshot(worker, lambda s: s.step >= 4 and not s.running)
    finally:
        worker.stop()
    assert all(torch.equal(kept[k], v) for k, v in timeline.entries[0].state.tensors.items())


def _run_worker(scene, steps, actions=()):
    signal = load_signal("camera", 16)
    worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=False, min_publish_interval=0.0)
    worker.timeline.every = 5
    worker.start()
    try:
        wait_for_snapshot(worker, lambda s: s.runs)
        worker.step(steps)
        wait_for_snapshot(worker, lambda s: s.step >= steps and not s.running)
        for action in actions:
            action(worker)
        return worker, wait_for_snapshot
    except Exception:
        worker.stop()
        raise


def _weights(worker):
    box = {}

    def grab(trainers):
        box["w"] = [{k: v.clone() for k, v in t.model.state_dict().items()} for _, t in trainers]
        box["loss"] = [list(t.loss_values) for _, t in trainers]
    worker.call(grab, edits=False)
    wait_for_snapshot(worker, lambda s: "w" in box)
    return box


def test_branching_with_the_same_settings_reproduces_the_original_run_exactly():
    worker, _ = _run_worker(replace(SCENE, preset="spectral-bias"), 30)
    try:
        original = _weights(worker)
        kept = worker.timeline.steps  # states are kept at publishing times, at least 5 steps apart
        assert kept[0] == 0 and len(kept) >= 3 and all(b - a >= 5 for a, b in zip(kept, kept[1:]))
        target = kept[1] + 3  # between kept states: restore kept[1], replay 3 steps
        worker.branch(target)
        branched = wait_for_snapshot(worker, lambda s: f"branched at step {target}" in s.message)
        assert branched.step == target and all(t <= target for t in branched.timeline)
        worker.step(30 - target)
        wait_for_snapshot(worker, lambda s: s.step == 30 and not s.running)
        again = _weights(worker)
        for a, b in zip(original["w"], again["w"]):
            assert all(torch.equal(a[k], b[k]) for k in a)
        assert original["loss"] == again["loss"]
        worker.branch(target, lr=5e-3)
        changed = wait_for_snapshot(worker, lambda s: "learning rate 0.005" in s.message)
        assert changed.step == target
        worker.step(30 - target)
        wait_for_snapshot(worker, lambda s: s.step == 30 and not s.running)
        other = _weights(worker)
        assert not all(torch.equal(a[k], b[k]) for a, b in zip(original["w"], other["w"]) for k in a)
    finally:
        worker.stop()


def test_a_branch_never_replays_across_an_edit():
    worker, _ = _run_worker(SCENE, 12)
    try:
        worker.set_lr(2e-3)  # an edit at step 12
        wait_for_snapshot(worker, lambda s: "learning rate set" in s.message)
        worker.step(6)
        wait_for_snapshot(worker, lambda s: s.step == 18 and not s.running)
        assert 12 in worker.timeline.steps
        worker.branch(15)  # the state after the edit at 12 is kept: replay 3 steps from it
        wait_for_snapshot(worker, lambda s: "branched at step 15" in s.message and "edit" not in s.message)
        kept = [k for k in worker.timeline.steps if k < 12]
        worker.branch(kept[-1] + 1)  # no edit between: exact
        wait_for_snapshot(worker, lambda s: f"branched at step {kept[-1] + 1}" in s.message)
    finally:
        worker.stop()


def test_plan_refuses_to_replay_across_edits():
    trainers = _trainers()
    timeline = Timeline(every=100)
    timeline.record(capture_runs(trainers))
    for _ in range(4):
        for _, trainer in trainers:
            trainer.step()
    timeline.record(capture_runs(trainers), edit=True)
    for _ in range(4):
        for _, trainer in trainers:
            trainer.step()
    plan = timeline.plan(7)
    assert plan.entry.step == 4 and plan.replay == 3 and not plan.note
    timeline.forget_after(2)
    assert timeline.steps == (0,)
    timeline.record(capture_runs(trainers), edit=True)  # step 8
    plan = timeline.plan(6)
    assert plan.entry.step == 0 and plan.replay == 6
