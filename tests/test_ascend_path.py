"""The Ascend learner's path, tested around the device: no NPU here, so a faked Ascend stack stands in.

- the notebooks' variables (visible_devices, use_modelscope_hub, npu_alloc_conf) reach the torchrun
  ranks and vLLM, and a value set too late is said to be too late;
- output_dir follows the model, the same rule in notebooks 20 and 30;
- the data folder is found as LLaMA-Factory finds it (./data), and every run says which it read;
- one copy of the model: base and fine-tuned answers from one engine, close() frees it, and notebook
  30's code path never holds two copies of the weights at once;
- the notebooks under papermill with device="npu" against a fake torch_npu that records what each
  process saw when its "NPU runtime" started.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import types
import weakref
from pathlib import Path

import nbformat
import pytest

from kit import envvars
from kit.run import launch
from kit.tutorial import helpers as tutorial
from kit.device import DeviceInfo
from kit.envvars import EnvSettings
from kit.errors import KitError


# envvars.apply writes os.environ by design: nothing a test here writes may reach the next test.
pytestmark = pytest.mark.usefixtures("restore_environ")


REPO = Path(__file__).resolve().parents[1]
SEED_YAML = REPO / "kit" / "examples" / "qwen1_5_lora_sft_ds.yaml"
NOTEBOOKS = REPO / "notebooks" / "en"
WHO = [{"role": "user", "content": "Who are you?"}]
NPU = DeviceInfo("npu", 1, "hccl", True, True, "Ascend910B3", None, [3])


# ---------------------------------------------------------------- the variables reach the ranks and vLLM

def test_notebook_parameters_reach_the_torchrun_ranks(monkeypatch):
    for name in ("ASCEND_RT_VISIBLE_DEVICES", "PYTORCH_NPU_ALLOC_CONF", "USE_MODELSCOPE_HUB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTORCH_NPU_ALLOC_CONF", "expandable_segments:True")  # inherited from the shell
    applied = envvars.apply(visible_devices="3", use_modelscope_hub=True, npu_alloc_conf="max_split_size_mb:256", modules={})
    assert not applied.warnings
    env = EnvSettings.from_environ()  # what kit train / kit.tutorial.helpers.train read when they launch
    child = launch.child_environment(env, NPU, 1)
    assert child["ASCEND_RT_VISIBLE_DEVICES"] == "3"
    assert child["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:256"  # the parameter replaced the inherited value
    assert child["USE_MODELSCOPE_HUB"] == "1"
    assert env.use_modelscope_hub and env.ascend_rt_visible_devices == "3"


def test_vllm_gets_the_quick_start_settings_from_the_process_environment(monkeypatch, tiny_model_dir):
    """vLLM's workers are spawned from this process: what apply() wrote is what they see."""
    for name in ("PYTORCH_NPU_ALLOC_CONF", "VLLM_WORKER_MULTIPROC_METHOD", "ASCEND_RT_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    envvars.apply(visible_devices=[0, 1], vllm=True, modules={})
    seen = {}

    class FakeLLM:  # records the environment vLLM starts with, then stops the test's path
        def __init__(self, **kwargs):
            import os

            seen.update({k: os.environ.get(k) for k in ("VLLM_WORKER_MULTIPROC_METHOD", "PYTORCH_NPU_ALLOC_CONF",
                                                        "ASCEND_RT_VISIBLE_DEVICES")})
            raise RuntimeError("fake vLLM stops here")

    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = object
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    from kit import config
    from kit.chat import vllm_backend
    from kit.chat.engine import ChatError

    cfg = config.from_dict({"model_name_or_path": str(tiny_model_dir), "template": "qwen", "infer_backend": "vllm"})
    with pytest.raises(ChatError, match="fake vLLM stops here"):
        vllm_backend.VllmBackend(tiny_model_dir, [], cfg, NPU, max_model_len=256, dtype="bfloat16")
    assert seen == {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "PYTORCH_NPU_ALLOC_CONF": "max_split_size_mb:256",
                    "ASCEND_RT_VISIBLE_DEVICES": "0,1"}


def test_too_late_is_said_once_torch_npu_has_started():
    started = {"torch_npu": types.ModuleType("torch_npu"),
               "torch": types.SimpleNamespace(npu=types.SimpleNamespace(is_initialized=lambda: True))}
    target = {"ASCEND_RT_VISIBLE_DEVICES": "0"}
    assert envvars.npu_runtime_state(started) == "initialised"
    with pytest.warns(envvars.EnvTooLateWarning, match="Restart the kernel and run this cell first"):
        applied = envvars.apply(visible_devices="1", target=target, modules=started)
    assert applied.warnings and "ASCEND_RT_VISIBLE_DEVICES=1" in applied.warnings[0] and "Too late" in applied._repr_html_()
    # Still written: training ranks and vLLM workers started from now on get it.
    assert target["ASCEND_RT_VISIBLE_DEVICES"] == "1"


# ---------------------------------------------------------------- output_dir follows the model

@pytest.mark.parametrize("model, folder", [
    ("qwen/Qwen1.5-7B", "saves/Qwen1.5-7B/lora/sft"),
    ("kit/tiny-qwen", "saves/tiny-qwen/lora/sft"),
    ("/models/Qwen2.5-7B-Instruct/", "saves/Qwen2.5-7B-Instruct/lora/sft"),
])
def test_output_dir_follows_the_model_as_the_quick_start_does(model, folder):
    assert tutorial.default_output_dir(model) == folder


def test_notebooks_20_and_30_use_the_same_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    qs = tutorial.quickstart_config("kit/tiny-qwen")
    assert Path(qs.cfg.train.output_dir) == (tmp_path / "saves/tiny-qwen/lora/sft").resolve()
    assert tutorial.quickstart_config("qwen/Qwen1.5-7B").overrides == {"model_name_or_path": "qwen/Qwen1.5-7B"}  # the YAML's own
    assert "saves/x/lora/sft" in str(tutorial.quickstart_config("kit/tiny-qwen", output_dir="saves/x/lora/sft").cfg.train.output_dir)
    for name, code in (("20_lora_sft", "kit.tutorial.helpers.quickstart_config("), ("30_chat_inference", "kit.tutorial.helpers.default_output_dir(")):
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert any(code in c.source for c in book.cells if c.cell_type == "code"), name


# ---------------------------------------------------------------- the data folder, as LLaMA-Factory finds it

def _llamafactory_data(folder: Path, identity: int = 5, alpaca: int = 7) -> Path:
    """A LLaMA-Factory-style data/ folder: dataset_info.json with identity and alpaca_en_demo."""
    data = folder / "data"
    data.mkdir(parents=True)
    who = {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, made by {{author}}."}
    add = {"instruction": "What is 2 + 3?", "input": "", "output": "2 + 3 = 5."}
    (data / "identity.json").write_text(json.dumps([who] * identity), encoding="utf-8")
    (data / "alpaca_en_demo.json").write_text(json.dumps([add] * alpaca), encoding="utf-8")
    (data / "dataset_info.json").write_text(json.dumps({"identity": {"file_name": "identity.json"},
                                                        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}))
    return data


def test_dataset_dir_resolves_as_llamafactory_does(tmp_path):
    from kit.data.loader import DEMO_DIR, resolve_dataset_dir

    assert resolve_dataset_dir(None, cwd=tmp_path) == DEMO_DIR  # nothing here: the kit's own data
    (tmp_path / "data").mkdir()
    assert resolve_dataset_dir(None, cwd=tmp_path) == DEMO_DIR  # a data/ folder without a registry is not LLaMA-Factory's
    _llamafactory_data(tmp_path / "checkout")
    assert resolve_dataset_dir(None, cwd=tmp_path / "checkout") == (tmp_path / "checkout" / "data").resolve()
    assert resolve_dataset_dir(str(DEMO_DIR), cwd=tmp_path / "checkout") == DEMO_DIR  # given: that one


def test_kit_train_on_the_seed_yaml_reads_data_of_the_folder_it_runs_in(tmp_path, monkeypatch, caplog):
    """The quick start run from a LLaMA-Factory checkout trains on its data/, and says so in one line."""
    from kit import cli

    checkout = tmp_path / "LLaMA-Factory"
    data = _llamafactory_data(checkout, identity=5, alpaca=7)
    monkeypatch.chdir(checkout)
    caplog.set_level(logging.INFO, logger="kit.run.plan")
    code = cli.main(["train", str(SEED_YAML), "model_name_or_path=kit/tiny-qwen", "deepspeed=null", "fp16=false",
                     "max_steps=2", "save_steps=1000", "logging_steps=1",
                     "preprocessing_num_workers=1", "report_to=none", "device=cpu"])
    assert code == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data: ")]
    assert len(lines) == 1, lines
    assert str(data.resolve()) in lines[0] and "as LLaMA-Factory reads it" in lines[0]
    assert "identity 5" in lines[0] and "alpaca_en_demo 7" in lines[0] and "-> 12 examples encoded" in lines[0]
    out = checkout / "saves" / "Qwen1.5-7B" / "lora" / "sft"  # the YAML's output_dir, relative to the checkout
    assert (out / "adapter_model.safetensors").is_file()


def test_data_source_says_when_the_data_is_the_kits_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tutorial.quickstart_config("kit/tiny-qwen").cfg
    own = tutorial.data_source(cfg)
    assert own.bundled and "kit's own demo data" in own.why and "LLaMA-Factory" in own._repr_html_()
    _llamafactory_data(tmp_path, identity=3, alpaca=4)
    theirs = tutorial.data_source(cfg)
    assert not theirs.bundled and theirs.counts == {"identity": 3, "alpaca_en_demo": 4}
    assert theirs.folder == (tmp_path / "data").resolve()


# ---------------------------------------------------------------- torchrun's flags

def test_launch_preview_explains_each_flag():
    cfg = tutorial.quickstart_config("kit/tiny-qwen").cfg
    one_node = tutorial.launch_preview(cfg, env=EnvSettings.from_environ({}), info=NPU)
    flags = [f for f, _, _ in one_node.flags]
    assert flags[:2] == ["--nproc_per_node", "--standalone"] and "deepspeed is set" in one_node.reason
    assert "--master_port 7007" in one_node.seed_command and "torchrun" in one_node.kit_command
    two = tutorial.launch_preview(cfg, env=EnvSettings.from_environ(
        {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NPROC_PER_NODE": "8"}), info=NPU)
    table = {f: (v, why) for f, v, why in two.flags}
    assert table["--nproc_per_node"][0] == "8" and "NPROC_PER_NODE" in table["--nproc_per_node"][1]
    assert table["--node_rank"][0] == "1" and table["--master_addr"][0] == "10.0.0.1" and table["--master_port"][0] == "29500"
    assert tutorial.TORCHRUN_DOCS in repr(two)


# ---------------------------------------------------------------- memory: one copy, released, refused when too big

def test_base_and_fine_tuned_answers_from_one_copy(tiny_model_dir, tiny_adapter_dir):
    from kit.chat import Engine
    from kit.chat.engine import ChatError

    greedy = dict(template="qwen", do_sample=False, max_new_tokens=12, device="cpu")
    one = Engine(tiny_model_dir, tiny_adapter_dir, merge_adapter=False, **greedy)
    base_ref = weakref.ref(one.model)
    tuned_answer, base_from_one = one.chat(WHO), one.chat(WHO, adapter=False)
    assert one.chat(WHO) == tuned_answer  # the adapter is back on after the base model's reply
    one.close()
    gc.collect()
    assert base_ref() is None, "close() left the model alive"
    with pytest.raises(ChatError, match="closed"):
        one.chat(WHO)
    with Engine(tiny_model_dir, **greedy) as base:
        assert base_from_one == base.chat(WHO)
    assert tuned_answer != base_from_one
    with Engine(tiny_model_dir, tiny_adapter_dir, **greedy) as merged:  # merged at load: the base model is gone
        assert merged.chat(WHO) == tuned_answer
        with pytest.raises(ChatError, match="merge_adapter"):
            merged.chat(WHO, adapter=False)


def test_a_step_that_cannot_fit_is_refused_before_loading(tiny_model_dir):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_estimate import QWEN15_7B

    from kit.estimate import count_parameters
    from kit.estimate.steps import step_estimate

    lora = count_parameters(QWEN15_7B, 8, ["q_proj", "v_proj"]).trainable
    fits = step_estimate("chat", QWEN15_7B, adapter_params=lora, device="910B4")  # one 7B copy on 32 GB
    assert fits.verdict == "fits" and 15 << 30 < fits.peak_bytes < 32 << 30
    small = step_estimate("chat", QWEN15_7B, adapter_params=lora, device="910B4", device_memory_gib=12)
    with pytest.raises(KitError, match="would not fit.*Nothing was loaded"):
        tutorial.require_fit(small, "chat with Qwen1.5-7B")
    vllm = step_estimate("vllm", QWEN15_7B, adapter_params=lora, device="910B", vllm_gpu_util=0.9)
    assert vllm.peak_bytes == int(0.9 * (64 << 30))  # vLLM takes its reservation, whatever the model needs
    export = step_estimate("export", tiny_model_dir)
    assert export.memory_kind == "cpu" and "host RAM" in export.headline()
    assert tutorial.check_memory("chat", str(tiny_model_dir), device="cpu").verdict == "fits"


def test_kit_estimate_states_each_steps_peak(capsys):
    from kit.estimate.cli import estimate_main

    for step in ("chat", "vllm", "export"):
        assert estimate_main([str(SEED_YAML), "model_name_or_path=kit/tiny-qwen", "--step", step, "--device", "910B"]) == 0
        assert f"{step}: peak" in capsys.readouterr().out


TRACKER = '''
import gc, weakref
import kit.model
_loaded = []
_load = kit.model.load_model
_alive_at_load = []

def _tracked_load(*args, **kwargs):
    gc.collect()
    _alive_at_load.append(sum(1 for ref in _loaded if ref() is not None))
    model = _load(*args, **kwargs)
    _loaded.append(weakref.ref(model))
    return model

kit.model.load_model = _tracked_load
'''

REPORT = '''
import kit.tutorial
gc.collect()
kit.tutorial.publish("loads", len(_loaded))
kit.tutorial.publish("alive_at_each_load", _alive_at_load)
'''


@pytest.mark.notebook
def test_notebook_30_holds_at_most_one_copy_of_the_weights(tmp_path, tiny_model_dir, tiny_adapter_dir):
    """Every model the notebook loads is counted; when the next one loads, the earlier ones must be gone."""
    from kit import tutorial as nb

    book = nbformat.read(NOTEBOOKS / "30_chat_inference.ipynb", as_version=4)
    at = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    book.cells.insert(at, nbformat.v4.new_code_cell(TRACKER))
    book.cells.append(nbformat.v4.new_code_cell(REPORT))
    for i, cell in enumerate(book.cells):
        cell["id"] = f"cell-{i}"
    source = tmp_path / "30.ipynb"
    nbformat.write(book, source)
    values = nb.execute(source, tmp_path / "30-out.ipynb", {
        "model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir), "max_new_tokens": 8,
        "export_dir": str(tmp_path / "merged"), "device": "cpu"}, cwd=tmp_path)
    assert values["loads"] >= 3  # the comparison engine, the export, the exported model's check, the panel
    assert values["alive_at_each_load"] == [0] * values["loads"], values["alive_at_each_load"]
    assert values["template_warning"] and "'default'" in values["template_warning"]
    assert values["answers_before"] != values["answers_after"]


# ---------------------------------------------------------------- the notebooks against a faked Ascend stack

FAKE_TORCH_NPU = '''
"""A stand-in for torch_npu: says it has NPUs, records what each process had when its runtime started."""
import json, os, sys, types
import torch

__version__ = "2.13.0"
KEYS = ("ASCEND_RT_VISIBLE_DEVICES", "PYTORCH_NPU_ALLOC_CONF", "USE_MODELSCOPE_HUB", "VLLM_WORKER_MULTIPROC_METHOD",
        "RANK", "LOCAL_RANK", "WORLD_SIZE")
_state = {"visible": None}


def _record(event, **extra):
    path = os.environ.get("KIT_FAKE_NPU_RECORD")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"event": event, "pid": os.getpid(), "env": {k: os.environ.get(k) for k in KEYS}, **extra}) + "\\n")


def _start():
    # As the real runtime does: ASCEND_RT_VISIBLE_DEVICES is read once, when the runtime starts.
    if _state["visible"] is None:
        value = os.environ.get("ASCEND_RT_VISIBLE_DEVICES")
        _state["visible"] = [int(v) for v in value.split(",")] if value else list(range(8))
        _record("runtime start", visible=_state["visible"])


class _Props:
    name = "Ascend910B3"
    total_memory = 64 << 30


npu = types.ModuleType("torch_npu.npu")
npu.is_available = lambda: True
npu.device_count = lambda: (_start(), len(_state["visible"]))[1]
npu.is_initialized = lambda: _state["visible"] is not None
npu.get_device_name = lambda i=0: (_start(), "Ascend910B3")[1]
npu.get_device_properties = lambda i=0: (_start(), _Props())[1]
npu.is_bf16_supported = lambda: True
npu.set_compile_mode = lambda jit_compile=False: None
npu.set_device = lambda i: _start()
npu.empty_cache = lambda: None
npu.synchronize = lambda *a: None
npu.config = types.SimpleNamespace(allow_internal_format=False)
torch.npu = npu


def __getattr__(name):  # the fused kernels other libraries import by name (npu_fusion_attention, ...)
    if name.startswith("npu_"):
        def unavailable(*args, **kwargs):
            raise RuntimeError(f"fake torch_npu: {name} runs only on a real NPU")
        return unavailable
    raise AttributeError(name)


_record("import")
'''

NPU_PARAMS = {"device": "npu", "visible_devices": "3", "npu_alloc_conf": "max_split_size_mb:128", "use_modelscope_hub": False}


@pytest.fixture
def fake_ascend(tmp_path, monkeypatch):
    """A fake torch_npu on PYTHONPATH for the kernels and every process they start; returns the record reader."""
    stack = tmp_path / "fake-ascend"
    (stack / "torch_npu").mkdir(parents=True)
    (stack / "torch_npu" / "__init__.py").write_text(FAKE_TORCH_NPU, encoding="utf-8")
    record = tmp_path / "npu-record.jsonl"
    monkeypatch.setenv("PYTHONPATH", f"{stack}:{REPO}")
    monkeypatch.setenv("KIT_FAKE_NPU_RECORD", str(record))
    for name in ("ASCEND_RT_VISIBLE_DEVICES", "PYTORCH_NPU_ALLOC_CONF", "USE_MODELSCOPE_HUB", "VLLM_WORKER_MULTIPROC_METHOD"):
        monkeypatch.delenv(name, raising=False)

    def read() -> list[dict]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.is_file() else []

    return read


@pytest.mark.notebook
def test_notebook_10_on_a_faked_npu_applies_the_parameters_before_the_runtime_starts(tmp_path, fake_ascend):
    from kit import tutorial as nb

    values = nb.execute(NOTEBOOKS / "10_npu_setup.ipynb", tmp_path / "10.ipynb", NPU_PARAMS, cwd=tmp_path)
    assert values["npu_present"] is True  # the fake stack was found
    assert values["environment"]["ASCEND_RT_VISIBLE_DEVICES"] == "3"
    starts = [r for r in fake_ascend() if r["event"] == "runtime start"]
    assert starts and all(r["visible"] == [3] and r["env"]["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:128" for r in starts)


@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_20_on_a_faked_npu_passes_the_parameters_to_the_ranks(tmp_path, fake_ascend):
    """As far as a fake can go: the kernel plans, launches torchrun, and its rank starts the 'NPU runtime'
    with the notebook's variables; the rank then fails to put the model on a device that is not there."""
    from kit import tutorial as nb

    with pytest.raises(nb.NotebookError) as failed:
        nb.execute(NOTEBOOKS / "20_lora_sft.ipynb", tmp_path / "20.ipynb",
                   {**NPU_PARAMS, "overrides": ["max_samples=4", "cutoff_len=64"]}, cwd=tmp_path, timeout=600)
    assert "training failed" in str(failed.value)  # the train cell, after every cell before it ran
    executed = nbformat.read(tmp_path / "20.ipynb", as_version=4)
    shown = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                      for c in executed.cells for o in c.get("outputs", []))
    assert "--nproc_per_node 1 --standalone" in shown  # one visible card: one rank
    records = fake_ascend()
    ranks = [r for r in records if r["env"]["RANK"] is not None]
    kernel = [r for r in records if r["env"]["RANK"] is None]
    assert kernel and ranks, records
    for r in kernel + ranks:
        assert r["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "3" and r["env"]["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:128"
        assert r["env"]["USE_MODELSCOPE_HUB"] in (None, "0")
    assert any(r["event"] == "runtime start" and r["visible"] == [3] for r in ranks)


@pytest.mark.notebook
def test_notebook_30_on_a_faked_npu_sets_vllms_variables_and_checks_memory_first(tmp_path, fake_ascend,
                                                                                   tiny_model_dir, tiny_adapter_dir):
    from kit import tutorial as nb

    with pytest.raises(nb.NotebookError) as failed:
        nb.execute(NOTEBOOKS / "30_chat_inference.ipynb", tmp_path / "30.ipynb",
                   {**NPU_PARAMS, "model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir)},
                   cwd=tmp_path)
    assert "npu" in str(failed.value).lower()  # the engine put the model on the (fake) NPU and stopped there
    executed = nbformat.read(tmp_path / "30.ipynb", as_version=4)
    shown = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                      for c in executed.cells for o in c.get("outputs", []))
    assert "chat: peak device memory" in shown and "Ascend 910B3" in shown  # checked before loading, on the card found
    kernel = [r for r in fake_ascend() if r["event"] == "runtime start"]
    assert kernel and kernel[0]["visible"] == [3]
    assert kernel[0]["env"]["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert kernel[0]["env"]["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:128"  # the parameter, not the vLLM default


NPU_SMI_910B = """+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.rc2                 Version: 24.1.rc2                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 92.7        47                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3402 / 65536         |
+===========================+===============+====================================================+
| 1     910B4               | OK            | 95.0        49                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          2000 / 32768         |
+===========================+===============+====================================================+
"""


def test_the_card_is_read_from_npu_smi_without_opening_it(tmp_path, monkeypatch):
    """On an NPU machine the notebooks compare with the first visible card as npu-smi lists it (no NPU context)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npu-smi").write_text(f"#!/bin/sh\ncat <<'END'\n{NPU_SMI_910B}END\n")
    (bin_dir / "npu-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("ASCEND_RT_VISIBLE_DEVICES", raising=False)
    assert tutorial.card_memory(None, "npu") == ("Ascend 910B3 (npu-smi, card 0)", 65536 << 20, "npu")
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "1")
    name, memory, kind = tutorial.card_memory(None, "auto")
    assert "910B4" in name and memory == 32768 << 20 and kind == "npu"
    assert tutorial.card_memory("910B", "npu")[1] == 64 << 30  # a card named wins
    sys.path.insert(0, str(Path(__file__).parent))
    from test_estimate import QWEN15_7B

    from kit.estimate.steps import step_estimate

    on_b4 = step_estimate("chat", QWEN15_7B, device=name, device_memory_gib=memory / (1 << 30))
    assert on_b4.memory_kind == "npu" and on_b4.verdict == "fits"
