"""The peak resident memory of a process's descendants (notebook kernels, torchrun, ranks, compilers), sampled in a thread.

The session's notebook runs (tests/notebook_runs.py) are sampled this way, so the Binder memory test
(tests/test_binder.py) reads the peak of the very runs the other notebook tests assert on, instead of running
the notebooks again.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

GiB = 1 << 30
# kit demo's log names the notebook it starts: "[3/4] 20_lora_sft (identity_name=Nova, ...)".
STARTED = re.compile(r"^\s*\[\d+/\d+\]\s+(\S+)", re.M)


@dataclass
class Process:
    pid: int
    rss: int
    command: str


@dataclass
class PeakMemory:
    """Peak RSS summed over the descendants of process ``root`` (not ``root`` itself, the papermill client, as a
    Jupyter server is not part of a kernel's memory either), and the processes at that peak.

    RSS is summed, so pages shared between processes count once per process: an overestimate of what a
    container's memory limit sees, which is the safe side. ``phase`` names what runs now: ``label`` at first,
    then the notebook kit demo's log (``log``, read as it grows) says it started; ``peaks`` holds each phase's peak.
    """

    root: int
    label: str
    log: Path | None = None
    interval: float = 0.1
    top: int = 8
    peak: int = 0
    peak_phase: str | None = None
    at_peak: list[Process] = field(default_factory=list)
    peaks: dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def __post_init__(self) -> None:
        import psutil

        self._psutil = psutil
        self.phase = self.label
        self._read = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peak-memory-{self.label}", daemon=True)

    def _follow_log(self) -> None:
        if self.log is None:
            return
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self._read)
                data = fh.read()
        except OSError:
            return
        data = data[:data.rfind(b"\n") + 1]  # whole lines only
        self._read += len(data)
        for name in STARTED.findall(data.decode("utf-8", errors="replace")):
            self.phase = f"{self.label} {name}"

    def _sample(self) -> None:
        psutil = self._psutil
        self._follow_log()
        try:
            processes = psutil.Process(self.root).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        rows = []
        for p in processes:
            try:
                rows.append((p.memory_info().rss, p))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        total = sum(rss for rss, _ in rows)
        self.samples += 1
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), total)
        if total > self.peak:
            self.peak, self.peak_phase = total, self.phase
            self.at_peak = [Process(p.pid, rss, _command(p)) for rss, p in sorted(rows, key=lambda r: -r[0])[:self.top]]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:  # a sampler that died would report a peak too low; keep sampling
                pass
            self._stop.wait(self.interval)

    def start(self) -> "PeakMemory":
        self._thread.start()
        return self

    def stop(self) -> None:
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
