"""Every example of a task once per epoch, in a fresh shuffled order each epoch, as saveable state.

It replaces a generator (which cannot be saved) so that a checkpoint can record where each task
is in its epoch: a resumed run then draws exactly the examples the uninterrupted run would.
"""

from __future__ import annotations

import random


class EpochOrder:
    """The example indices of one task, epoch after epoch.

    Draws from the shared `rng` exactly as the generator it replaced did: the first epoch is
    shuffled at the first `next_index` (not at construction), each later one when the previous
    runs out, so the same seed gives the same batches as before.
    """

    def __init__(self, n: int):
        self.n = n
        self.order: list[int] = []
        self.position = 0

    def next_index(self, rng: random.Random) -> int:
        if self.n == 0:
            raise ValueError("cannot train on an empty training split")
        if self.position == len(self.order):
            self.order = list(range(self.n))
            rng.shuffle(self.order)
            self.position = 0
        index = self.order[self.position]
        self.position += 1
        return index

    def state(self) -> dict:
        """JSON-ready: the current epoch's order and the position in it."""
        return {"n": self.n, "order": list(self.order), "position": self.position}

    def restore(self, state: dict) -> None:
        """Continue from `state()` of a task of the same size.

        Raises:
            ValueError: the saved order belongs to a task of another size (the data changed).
        """
        if int(state["n"]) != self.n:
            raise ValueError(
                f"the checkpoint's epoch order is over {state['n']} examples but the task has {self.n}; "
                "resume on the data the interrupted run trained on"
            )
        self.order = [int(i) for i in state["order"]]
        self.position = int(state["position"])
