"""After a fault: bring the pipeline back, cut a recovery point, and check what the mirror holds.

1. Writes stop (the writer finishes its qemu-io chunk); every stage that is down is restarted.
2. The tracker's pending resync set (dirty bitmap) drains: what it held is published again.
3. `tidemark rp create`; wait for its manifest, then for MirrorStatus to say the mirror holds it.
4. `tidemark verify --source`: the mirror is identical to the quiet source image.
5. The client's acknowledged writes (`AckModel`) are on the source and on the mirror, except in
   blocks still in the tracker's pending resync set.
Nothing here sleeps a fixed time: each step polls its public signal, with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .stack import Stack
from .workload import AckModel

CONVERGE_TIMEOUT_S = 180.0
# After a kill of all three brokers the restarted processor's first transaction waits for the
# coordinator to abort the killed one's (CONCURRENT_TRANSACTIONS until every partition has a leader
# again): over 120 s once on this 2-core machine under load, where every other fault converged in < 80 s.
POLL_S = 0.25


@dataclass
class Check:
    label: str
    rp_id: int | None = None
    restarted: list[str] = field(default_factory=list)
    mirror_identical: bool = False
    verify_output: str = ""
    lost_on_mirror: set[int] = field(default_factory=set)
    lost_on_source: set[int] = field(default_factory=set)
    pending_resync: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.mirror_identical and not self.lost_on_mirror and not self.lost_on_source


class Converger:
    def __init__(self, stack: Stack, model: AckModel | None, timeout: float = CONVERGE_TIMEOUT_S) -> None:
        """`model`: the client's acknowledged writes, checked on both images; None when the client
        checks them itself (fio's verify pass), so no image is read whole into memory here."""
        self.stack = stack
        self.model = model
        self.timeout = timeout

    def check(self, label: str) -> Check:
        started = time.monotonic()
        result = Check(label)
        deadline = started + self.timeout
        result.restarted += self.stack.revive()
        self._until(lambda: not len(self.stack.tracker.dirty_blocks()), "the dirty bitmap drained", deadline, result)
        result.rp_id = self._cut(label, deadline, result)
        self._until(lambda: self._holds(result.rp_id), f"the mirror holding rp {result.rp_id}", deadline, result)
        stack = self.stack
        verify = stack.cluster.cli(
            "verify", "--volume", stack.volume, "--mirror", str(stack.mirror_path), "--source", str(stack.image),
            check=False,
        )  # fmt: skip
        assert verify.returncode in (0, 3), f"verify failed to run:\n{verify.stdout}\n{verify.stderr}"
        result.mirror_identical = verify.returncode == 0
        result.verify_output = verify.stdout[-2000:]
        dirty = stack.tracker.dirty_blocks()
        result.pending_resync = len(dirty)
        if self.model is not None:
            source, mirror = stack.image.read_bytes(), stack.mirror_path.read_bytes()
            result.lost_on_source = self.model.lost_writes(source, dirty.__contains__)
            result.lost_on_mirror = self.model.lost_writes(mirror, dirty.__contains__)
            if result.passed:
                self.model.settle(source)
        result.seconds = time.monotonic() - started
        return result

    def _cut(self, label: str, deadline: float, result: Check) -> int:
        self.stack.cluster.cli("rp", "create", "--volume", self.stack.volume, "--label", label)
        found: list[int] = []

        def published() -> bool:
            found[:] = [rp for rp, m in self.stack.manifests().items() if m["label"] == label]
            return bool(found)

        self._until(published, f"the manifest of {label!r}", deadline, result)
        return found[0]

    def _holds(self, rp_id: int | None) -> bool:
        status = self.stack.status()
        if status is None:
            return False
        assert status["state"] != "ERROR", f"mirror in ERROR: {status['message']}\n{self.stack.logs()}"
        return rp_id is not None and status["rp_id"] is not None and status["rp_id"] >= rp_id

    def _until(self, condition: Callable[[], bool], what: str, deadline: float, result: Check) -> None:
        """Poll `condition`, restarting any stage that exited meanwhile (a supervisor would)."""
        while not condition():
            result.restarted += self.stack.revive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{result.label}: {what}: not within {self.timeout} s\n{self.stack.logs()}")
            time.sleep(POLL_S)
