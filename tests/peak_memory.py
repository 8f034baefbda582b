"""The peak resident memory of what a test starts (notebook kernels, torchrun, ranks, compilers), sampled in a thread.

Used by the session fixtures that execute the notebooks (tests/conftest.py), so the Binder memory test
(tests/test_binder.py) reads the peak of the very runs the other notebook tests assert on, instead of running
the notebooks again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

GiB = 1 << 30


@dataclass
class Process:
    pid: int
    rss: int
    command: str


@dataclass
class PeakMemory:
    """Peak RSS summed over the processes this process started while sampling, and the processes at that peak.

    Only processes started after ``__enter__`` count (as children, grandchildren, ... of this process), so a
    process an earlier test left behind does not. RSS is summed, so pages shared between processes count once
    per process: an overestimate of what a container's memory limit sees, which is the safe side.

    ``phase`` names what runs now (the fixture sets it, e.g. to the notebook executing); the peak records it,
    and ``peaks`` holds the peak of each phase.
    """

    interval: float = 0.1
    top: int = 8
    peak: int = 0
    peak_phase: str | None = None
    at_peak: list[Process] = field(default_factory=list)
    peaks: dict[str, int] = field(default_factory=dict)
    phase: str | None = None
    samples: int = 0

    def __post_init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._before: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def _processes(self) -> list:
        return [p for p in self._me.children(recursive=True) if p.pid not in self._before]

    def _sample(self) -> None:
        psutil = self._psutil
        rows = []
        for p in self._processes():
            try:
                rows.append((p.memory_info().rss, p))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        total = sum(rss for rss, _ in rows)
        self.samples += 1
        phase = self.phase or "(before the first phase)"
        self.peaks[phase] = max(self.peaks.get(phase, 0), total)
        if total > self.peak:
            self.peak, self.peak_phase = total, phase
            self.at_peak = [Process(p.pid, rss, _command(p)) for rss, p in sorted(rows, key=lambda r: -r[0])[:self.top]]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:  # a sampler that dies would report a peak too low; keep sampling
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._before = {p.pid for p in self._me.children(recursive=True)}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> str:
        """The peak, when it happened, and the processes that held the memory then (largest first)."""
        lines = [f"peak {self.peak / GiB:.2f} GiB during {self.peak_phase} ({self.samples} samples); "
                 "the largest processes then:"]
        lines += [f"  {p.rss / GiB:6.2f} GiB  pid {p.pid}  {p.command}" for p in self.at_peak]
        lines.append("peak of each phase: " + ", ".join(f"{k} {v / GiB:.2f} GiB" for k, v in self.peaks.items()))
        return "\n".join(lines)


def _command(process) -> str:
    try:
        words = process.cmdline() or [process.name()]
    except Exception:
        return "(gone)"
    text = " ".join(words)
    return text if len(text) <= 160 else text[:157] + "..."
