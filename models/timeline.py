"""The training timeline: a bounded record of past training states, to go back to and branch from.

The worker captures the complete state of its runs (models/trainer_state.py) every ``every`` steps and right
after every edit (a crop, a new learning rate, a grown stage). When the record is full, every other entry is
dropped and the spacing doubles, so the whole run stays covered by at most ``capacity`` entries. Edits are kept
longest: a branch replays training from the nearest state at or before the wanted step, and replaying is exact
only when no edit happened in between (training is deterministic given the state; an edit is not).
"""
from __future__ import annotations

from dataclasses import dataclass

from .trainer_state import RunsState, state_bytes

__all__ = ["Timeline", "TimelineEntry", "BranchPlan"]


@dataclass(frozen=True)
class TimelineEntry:
    step: int
    state: RunsState
    edit: bool = False
    """Captured right after an edit (kept through thinning as long as possible)."""


@dataclass(frozen=True)
class BranchPlan:
    entry: TimelineEntry
    replay: int
    """Steps to train after restoring ``entry`` to reach the wanted step exactly (0: the entry is the step)."""
    note: str = ""
    """Why the branch starts elsewhere than asked, if it does."""


class Timeline:
    def __init__(self, every: int = 25, capacity: int = 32, max_bytes: int = 256 * 1024 * 1024):
        self.every = every
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.entries: list[TimelineEntry] = []
        self._edits: list[int] = []

    def clear(self) -> None:
        self.entries.clear()
        self._edits.clear()

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(entry.step for entry in self.entries)

    def due(self, step: int) -> bool:
        """True when a capture at ``step`` is wanted (the first one, or ``every`` steps after the last)."""
        return not self.entries or step >= self.entries[-1].step + self.every

    def record(self, state: RunsState, edit: bool = False) -> None:
        step = state.step
        while self.entries and self.entries[-1].step >= step:
            if self.entries[-1].step == step:
                edit = edit or self.entries[-1].edit
            self.entries.pop()  # the same step again (after an edit), or a rewind: the newer state wins
        if edit:
            self._edits = [e for e in self._edits if e < step] + [step]
        self.entries.append(TimelineEntry(step, state, edit))
        self._thin()

    def forget_after(self, step: int) -> None:
        """A branch at ``step`` drops the old future."""
        self.entries = [e for e in self.entries if e.step <= step]
        self._edits = [e for e in self._edits if e <= step]

    def plan(self, step: int) -> BranchPlan | None:
        """How to reach ``step``: the nearest entry at or before it, replaying when no edit lies between."""
        before = [e for e in self.entries if e.step <= step]
        if not before:
            return None
        entry = before[-1]
        if entry.step == step:
            return BranchPlan(entry, 0)
        crossed = [e for e in self._edits if entry.step < e <= step]
        if crossed:
            return BranchPlan(entry, 0, f"an edit at step {crossed[0]} lies between the kept state and step {step}: "
                                        f"branching from step {entry.step}")
        return BranchPlan(entry, step - entry.step)

    @property
    def edit_count(self) -> int:
        """Edits in the current history (a branch forgets those of the future it drops)."""
        return len(self._edits)

    def nbytes(self) -> int:
        return sum(state_bytes(e.state) for e in self.entries)

    def _thin(self) -> None:
        while len(self.entries) > 2 and (len(self.entries) > self.capacity or self.nbytes() > self.max_bytes):
            keep = [self.entries[0]]
            for i, entry in enumerate(self.entries[1:-1], start=1):
                if entry.edit or i % 2 == 0:
                    keep.append(entry)
            keep.append(self.entries[-1])
            if len(keep) == len(self.entries):  # only edits left in between: drop the oldest of them
                keep = [self.entries[0], *self.entries[2:]]
            self.entries = keep
            self.every *= 2
