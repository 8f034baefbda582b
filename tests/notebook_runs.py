"""The long runs a test session shares, each made once: kit demo in English, notebook 40, kit demo of the Chinese
edition from the installed wheel, a kit batch sweep of notebook 20 (tests/test_batch.py), the vLLM runs and the
launches of tests/test_launch.py.

Each runs in a subprocess (this file, run as a script). A background thread started as soon as the tests are
collected (conftest.py) runs them one after the other, so on a machine of two cores the notebooks train on one
while the other tests run on the other; the tests that read them run last, and a test that would wait for a run
not started yet runs it itself (both cores work until the last run ends). The English runs are made under Binder's
session environment (binder/start) with the memory of their process tree sampled (tests/peak_memory.py), for
the Binder memory test. DeepSpeed's C++ op is compiled before the first run starts, so no compiler runs inside
a measured run.

As a script: ``python notebook_runs.py demo|execute|batch|wheel|vllm_predict|vllm_compare|launch RESULT.json ARGUMENTS``
runs one and writes what it returned to RESULT.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Notebook 40's short sweep: two runs of notebook 20 (test_notebooks.py runs the Chinese edition on its folder).
EXPERIMENT_PARAMETERS = {"lora_ranks": [2, 8], "learning_rates": [3e-3], "max_samples": 8, "num_train_epochs": 1.0}
NB20 = REPO / "notebooks" / "en" / "20_lora_sft.ipynb"
# kit batch's sweeps of notebook 20. SHORT: 7 steps, each logged; without notebook 20's second, short training on its
# own-data example (a sweep does not need it).
SHORT = ["-p", "max_samples", "8", "-p", "num_train_epochs", "1", "-p", "logging_steps", "1", "-p", "train_own_data", "false"]
# kit predict on LLaMA-Factory's predict reference, through transformers and through vLLM (tests/test_predict.py)
PREDICT_FIXTURE = REPO / "tests" / "fixtures" / "llamafactory_predict"
PREDICT_ARGS = ["--model_name_or_path", str(REPO / "kit" / "tiny_qwen"), "--adapter_name_or_path", str(PREDICT_FIXTURE / "adapter"),
                "--template", "qwen", "--eval_dataset", "identity,alpaca_en_demo,alpaca_zh_demo", "--dataset_dir",
                str(REPO / "kit" / "data" / "demo"), "--cutoff_len", "64", "--max_samples", "6", "--do_sample", "false",
                "--max_new_tokens", "32"]
# The Chinese edition with knobs other than the defaults: another name, another lora_target, cutoff_len 96
ZH_OVERRIDES = ["identity_name=Orion", "lora_target=q_proj,k_proj,v_proj,o_proj", "cutoff_len=96"]
# The order they run in (and their readers' order), the longest first: whichever of the two threads (the background
# one, or a test that would wait) is free takes the next, so the session ends at most one short run after the other
# thread's last.
ORDER = ("demo", "wheel", "experiments", "vllm_predict", "vllm_compare", "sweep", "three_launches", "two_nodes",
         "killed_and_resumed", "two_processes")


@dataclass
class Job:
    """One run: what it executes, where, and (once done) what it returned or why it failed."""

    name: str
    # "demo": kit.tutorial.demo.run_demo; "execute": kit.tutorial.execute of one notebook; "batch": kit.cli.main's
    # exit status and standard output for the given arguments; "wheel": kit demo from a wheel in a new venv;
    # "vllm_predict", "vllm_compare": the vLLM environment's runs; "launch": a function of tests/launch_runs.py
    kind: str
    arguments: dict[str, Any]
    folder: Path
    binder: bool  # under binder/start's environment, its memory sampled
    result: dict[str, Any] | None = None
    error: str | None = None
    memory: Any = None  # PeakMemory, for the binder runs
    done: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None
    claimed: bool = False  # taken by the background thread or by a test that needed it before it started
    here: bool = False  # run by a test (in the foreground) rather than by the background thread
    started: float | None = None  # time.monotonic() when it started, and its wall time once done
    seconds: float | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"


def jobs(root: Path) -> dict[str, Job]:
    demo, experiments, sweep, wheel = root / "demo", root / "experiments", root / "batch", root / "wheel"
    return {job.name: job for job in (
        # kit demo with a name that is not the default one
        Job("demo", "demo", {"overrides": ["identity_name=Nova", "identity_author=Acme", f"output_dir={demo / 'nova'}"],
                             "run_dir": str(demo / "run"), "lang": "en"}, demo, binder=True),
        # notebook 40 sweeping two short runs of notebook 20
        Job("experiments", "execute", {"notebook": str(REPO / "notebooks" / "en" / "40_experiments.ipynb"),
                                       "output": str(experiments / "en" / "40_experiments.ipynb"),
                                       "parameters": {**EXPERIMENT_PARAMETERS, "out": str(experiments / "sweep")},
                                       "cwd": str(experiments)}, experiments, binder=True),
        # the wheel built from this tree, installed into a new venv, kit demo of the Chinese edition with non-default
        # knobs run outside the checkout (tests/test_wheel.py and the demo_zh fixture both read it)
        Job("wheel", "wheel", {"folder": str(wheel), "overrides": ZH_OVERRIDES, "lang": "zh"}, wheel, binder=False),
        # kit batch: two learning rates, one of them negative (those runs fail), x two lora_targets, two runs at a time
        Job("sweep", "batch", {"argv": ["batch", str(NB20), "-p", "learning_rate", "-1", "3e-3", "-p", "lora_target",
                                        "q_proj,v_proj", "q_proj,k_proj", *SHORT, "--out", str(sweep / "lr-target"),
                                        "--parallel", "2"]}, sweep, binder=False),
        # kit predict through transformers, then through vLLM in the vLLM environment (KIT_VLLM_PYTHON), compared
        Job("vllm_predict", "vllm_predict", {"folder": str(root / "vllm-predict")}, root / "vllm-predict", binder=False),
        # tests/compare_vllm.py in the vLLM environment: its backend against transformers, and kit api around it
        Job("vllm_compare", "vllm_compare", {"folder": str(root / "vllm-compare")}, root / "vllm-compare", binder=False),
        # tests/launch_runs.py: real launches of kit train and torchrun (tests/test_launch.py, tests/test_processes.py)
        *(Job(name, "launch", {"function": name, "folder": str(root / name)}, root / name, binder=False)
          for name in ("two_nodes", "three_launches", "two_processes", "killed_and_resumed")),
    )}


class NotebookRuns:
    """The session's runs: ``start(names)`` runs them in the background in ORDER; ``get(name)`` waits for one
    (running it here and now if it was not started)."""

    def __init__(self, root: Path):
        self.root = root
        self.jobs = jobs(root)
        self._prebuilt: bool | None = None
        self._lock = threading.Lock()
        self._claims = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduled: list[str] = []

    def prebuilt(self) -> bool:
        """DeepSpeed's op compiled into this session's TORCH_EXTENSIONS_DIR (once; False where it cannot be).

        The runs here train in one process and do not load it; the suite's tests of several processes do, and a
        pytest started without dev.sh (which compiles it) would otherwise compile it inside one of them."""
        with self._lock:
            if self._prebuilt is None:
                from kit.run.launch import prebuild_deepspeed_ops

                self._prebuilt = prebuild_deepspeed_ops()
            return self._prebuilt

    def start(self, names) -> None:
        self._scheduled = [name for name in ORDER if name in set(names)]
        if self._scheduled:
            self._thread = threading.Thread(target=self._run_all, name="notebook-runs", daemon=True)
            self._thread.start()

    def _claim(self, wanted: Job | None = None) -> Job | None:
        """``wanted`` if no one has started it, else the first scheduled run no one has; None if none is left."""
        with self._claims:
            if self._stopping.is_set():
                return None
            for job in ([wanted] if wanted is not None else []) + [self.jobs[name] for name in self._scheduled]:
                if not job.claimed:
                    job.claimed = True
                    return job
        return None

    def _run_all(self) -> None:
        try:
            self.prebuilt()
        except Exception as exc:  # the runs then compile it themselves, and the Binder test says so
            self._prebuilt = False
            print(f"notebook_runs: prebuilding DeepSpeed's op failed: {exc!r}", file=sys.stderr)
        while (job := self._claim()) is not None:
            self._run(job)
        for name in self._scheduled:  # stopped early: whoever waits is told
            job = self.jobs[name]
            if not job.claimed:
                job.error = "the session ended before this run started"
                job.done.set()

    def _run(self, job: Job) -> None:
        from helpers import binder_start_environment
        from peak_memory import PeakMemory

        job.folder.mkdir(parents=True, exist_ok=True)
        result = job.folder / f"{job.name}.result.json"
        env = {**os.environ, **(binder_start_environment() if job.binder else {})}
        job.started = time.monotonic()
        try:
            with open(job.log, "wb") as log:
                job.process = subprocess.Popen(
                    [sys.executable, __file__, job.kind, str(result), json.dumps(job.arguments)], cwd=REPO, env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if job.binder:
                job.memory = PeakMemory(job.process.pid, job.name, job.log).start()
            code = job.process.wait()
            if job.memory is not None:
                job.memory.stop()
            if code == 0 and result.is_file():
                job.result = json.loads(result.read_text(encoding="utf-8"))
            else:
                tail = job.log.read_text(encoding="utf-8", errors="replace")[-6000:]
                job.error = f"{job.name} exited with {code} (log: {job.log}):\n{tail}"
        except Exception as exc:
            job.error = f"{job.name} could not run: {exc!r}"
        finally:
            job.seconds = time.monotonic() - job.started
            job.done.set()

    def get(self, name: str) -> Job:
        """The run ``name``, done. While it is not, this thread runs what no one has started (``name`` first), rather
        than wait beside the background thread on a core of its own."""
        job = self.jobs[name]
        while not job.done.is_set() and (other := self._claim(job)) is not None:
            self.prebuilt()
            other.here = True
            self._run(other)
        job.done.wait()
        if job.error:
            raise RuntimeError(job.error)
        return job

    def timeline(self) -> str:
        """One line: each run's wall time in the order they ran (pytest prints it beside the slowest tests)."""
        done = [job for job in self.jobs.values() if job.seconds is not None]
        if not done:
            return ""
        first = min(job.started for job in done)
        parts = [f"{job.name} {job.seconds:.0f} s" + (" (run by a test)" if job.here else "") + (" (failed)" if job.error else "")
                 for job in sorted(done, key=lambda job: job.started)]
        end = max(job.started + job.seconds for job in done) - first
        return f"session runs: {', '.join(parts)}; all done {end:.0f} s after the first started"

    def stop(self) -> None:
        """The session is over: start no further run and end the one running, with every process it started."""
        self._stopping.set()
        for job in self.jobs.values():
            if job.process is not None and job.process.poll() is None:
                _end_tree(job.process.pid)


def _end_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


class _Tee:
    """Standard output kept as well as written (to the job's log)."""

    def __init__(self, stream: Any):
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _batch(argv: list[str]) -> dict[str, Any]:
    """``kit batch`` as the tests called it in-process: its exit status and what it printed on standard output."""
    import contextlib

    from kit import cli

    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        code = cli.main(argv)
    return {"code": code, "stdout": "".join(tee.parts), "out": argv[argv.index("--out") + 1]}


def _vllm_predict(folder: Path) -> dict[str, Any]:
    """``kit predict`` with transformers, then with ``--infer_backend vllm --compare_with`` its predictions, in the vLLM
    environment (the path of LLaMA-Factory's scripts/vllm_infer.py); nothing where KIT_VLLM_PYTHON is not set."""
    python = os.environ.get("KIT_VLLM_PYTHON")
    if not python:
        return {"skipped": "KIT_VLLM_PYTHON is not set"}
    from kit import cli

    hf, vllm = folder / "hf", folder / "vllm"
    code = cli.main(["predict", *PREDICT_ARGS, "--output_dir", str(hf)])
    if code != 0:
        return {"hf_code": code}
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([python, "-m", "kit.cli", "predict", *PREDICT_ARGS, "--infer_backend", "vllm", "--output_dir",
                           str(vllm), "--compare_with", str(hf / "generated_predictions.jsonl")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return {"hf_code": code, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr[-3000:],
            "hf": str(hf), "vllm": str(vllm)}


def _vllm_compare(folder: Path) -> dict[str, Any]:
    """tests/compare_vllm.py in the vLLM environment on the session's tiny model and adapter, made here as conftest
    makes them; nothing where KIT_VLLM_PYTHON is not set."""
    python = os.environ.get("KIT_VLLM_PYTHON")
    if not python:
        return {"skipped": "KIT_VLLM_PYTHON is not set"}
    from helpers import session_tiny_model, train_tiny_adapter

    model = session_tiny_model(folder / "tiny-qwen")
    adapter = train_tiny_adapter(model, folder / "adapter")
    out = folder / "result.json"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           # This checkout's kit, whatever the vLLM environment has installed.
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([python, str(Path(__file__).with_name("compare_vllm.py")), str(model), str(adapter), str(out)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    result = json.loads(out.read_text(encoding="utf-8")) if proc.returncode == 0 and out.is_file() else None
    return {"returncode": proc.returncode, "stderr": proc.stderr[-4000:], "result": result}


def main(argv: list[str]) -> int:
    kind, result, arguments = argv[1], Path(argv[2]), json.loads(argv[3])
    if kind == "demo":
        from kit.tutorial.demo import run_demo

        run = run_demo(arguments["overrides"], run_dir=arguments["run_dir"], lang=arguments["lang"],
                       log=lambda line: print(line, flush=True))
        out = {"run_dir": str(run.run_dir), "output_dir": str(run.output_dir), "values": run.values, "seconds": run.seconds,
               "notebooks": {name: str(path) for name, path in run.notebooks.items()}}
    elif kind == "execute":
        from kit import tutorial as nb

        out = {"values": nb.execute(arguments["notebook"], arguments["output"], arguments["parameters"], cwd=arguments["cwd"])}
    elif kind == "batch":
        out = _batch(arguments["argv"])
    elif kind == "wheel":
        from wheel_build import wheel_demo

        out = wheel_demo(Path(arguments["folder"]), arguments["overrides"], arguments["lang"])
    elif kind == "vllm_predict":
        out = _vllm_predict(Path(arguments["folder"]))
    elif kind == "vllm_compare":
        out = _vllm_compare(Path(arguments["folder"]))
    elif kind == "launch":
        import launch_runs

        out = getattr(launch_runs, arguments["function"])(Path(arguments["folder"]))
    else:
        raise SystemExit(f"notebook_runs.py: unknown kind {kind!r}")
    result.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
