"""A loss curve that keeps one mean per window of steps (small enough to store per trial)."""

from __future__ import annotations


class LossCurve:
    def __init__(self, window: int, total_steps: int):
        self.window, self.total_steps = window, total_steps
        self.points: list[float] = []
        self._pending: list[float] = []
        self._steps = 0

    def add(self, loss: float) -> bool:
        """Record one step's loss; True when a new point was appended."""
        self._pending.append(loss)
        self._steps += 1
        if len(self._pending) == self.window or self._steps == self.total_steps:
            self.points.append(sum(self._pending) / len(self._pending))
            self._pending.clear()
            return True
        return False

    def state(self) -> dict:
        """Everything `restore` needs to continue the curve exactly (JSON-ready; checkpoints)."""
        return {"points": list(self.points), "pending": list(self._pending), "steps": self._steps}

    def restore(self, state: dict) -> None:
        self.points = [float(p) for p in state["points"]]
        self._pending = [float(p) for p in state["pending"]]
        self._steps = int(state["steps"])
