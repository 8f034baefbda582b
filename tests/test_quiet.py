"""A quiet terminal (issue 21): what the libraries print on their own, during the kit's own steps, stays out.

The kernel's "running over TCP without encryption" warning at each notebook start, transformers' "Loading weights"
and "Writing model shards" bars around the kit's loads and saves, and DeepSpeed's "Setting accelerator to CPU"
note (logged once per process, at DeepSpeed's first import, so those checks run in a fresh process). A DeepSpeed
training run's own output, in each of the three ways to launch one, is checked by
tests/test_launch.py::test_three_launches_give_the_same_result_and_print_no_library_notes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
LIBRARY_LINES = ("Loading weights", "Writing model shards", "Setting accelerator to CPU", "without encryption")


def _python(code: str, timeout: int = 300, **env: str | None) -> str:
    """Output (stdout and stderr) of ``code`` in a fresh Python: DeepSpeed not imported yet there. None unsets a variable."""
    given = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={k: v for k, v in given.items() if v is not None})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _tiny_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import kit.tutorial\nkit.tutorial.publish('answer', 6 * 7)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.notebook
def test_a_notebook_run_prints_no_kernel_warning(tmp_path, capfd):
    import zmq
    from jupyter_client.manager import KernelManager

    from kit.tutorial import values

    if not zmq.has("curve") or "transport_encryption" not in KernelManager.class_traits():
        pytest.skip("this jupyter_client or pyzmq cannot encrypt the kernel's channels")
    got = values.execute(_tiny_notebook(tmp_path / "t.ipynb"), tmp_path / "out.ipynb")
    out, err = capfd.readouterr()  # the kernel writes to the terminal's file descriptors, not sys.stderr
    assert got == {"answer": 42}
    assert "without encryption" not in out + err, out + err
    assert "[IPKernelApp]" not in out + err, out + err


def test_the_kits_loads_and_saves_show_no_library_bars_or_notes(tiny_model_dir, tmp_path):
    """A load and an export, as notebook 30 does them: the kit's line, nothing of transformers' or DeepSpeed's."""
    code = (f"from kit.chat.export import export_model\nfrom kit.config import from_dict\n"
            f"export_model(from_dict({{'model_name_or_path': {str(tiny_model_dir)!r}, 'template': 'qwen', "
            f"'export_dir': {str(tmp_path / 'merged')!r}}}))\nprint('exported')")
    out = _python(code)
    assert "exported" in out and (tmp_path / "merged" / "config.json").is_file()
    assert not [line for line in LIBRARY_LINES if line in out], out


def test_a_slow_load_shows_the_kits_bar_in_the_persons_language(tiny_model_dir):
    """Not silence: a step slower than BAR_DELAY_S (a real model) shows a bar, the kit's, translated."""
    code = (f"import kit.model as m\nfrom pathlib import Path\nm.BAR_DELAY_S = 0\nm.load_model(Path({str(tiny_model_dir)!r}))")
    out = _python(code, KIT_LANG="zh")
    assert "加载权重" in out and "Loading weights" not in out, out


def test_only_the_kits_own_calls_are_quieted(tiny_model_dir, capfd):
    """A person's own from_pretrained after the kit's keeps transformers' bar (the kit restored the hook)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from kit import model as model_mod

    if not hf_logging.is_progress_bar_enabled() or not hasattr(hf_logging, "set_tqdm_hook"):
        pytest.skip("transformers' bars are off here, or this transformers draws no Loading weights bar")
    model_mod.load_model(tiny_model_dir)
    capfd.readouterr()
    AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    out, err = capfd.readouterr()
    assert "Loading weights" in out + err
    import logging

    assert model_mod.NO_CPU_ACCELERATOR_NOTE not in logging.getLogger("DeepSpeed").filters


def test_deepspeed_note_filter_lets_other_records_through():
    import logging

    from kit.model import NO_CPU_ACCELERATOR_NOTE

    def record(msg):
        return logging.LogRecord("DeepSpeed", logging.WARNING, __file__, 1, msg, None, None)

    assert not NO_CPU_ACCELERATOR_NOTE.filter(record(
        "Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it."))
    assert NO_CPU_ACCELERATOR_NOTE.filter(record("Setting ds_accelerator to cpu (auto detect)"))
    assert NO_CPU_ACCELERATOR_NOTE.filter(record("DS_ACCELERATOR must be one of ..."))


def test_only_the_runs_own_accumulation_note_is_dropped():
    import logging

    from kit.model import quiet_accumulation_note

    def record(steps: int) -> logging.LogRecord:
        return logging.LogRecord("accelerate.accelerator", logging.WARNING, __file__, 1, "[RANK 0] Gradient accumulation "
                                 f"steps mismatch: GradientAccumulationPlugin has 1, DeepSpeed config has {steps}. Using "
                                 "DeepSpeed's value.", None, None)

    accelerate_logger = logging.getLogger("accelerate.accelerator")
    with quiet_accumulation_note(2):
        assert not accelerate_logger.filter(record(2))
        assert accelerate_logger.filter(record(4))  # not the run's value: a person should see it
    assert accelerate_logger.filter(record(2)) and not accelerate_logger.filters
