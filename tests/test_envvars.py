"""The documented environment variables: read in one place, with the launcher's and the doctor's rules."""

from __future__ import annotations

import pytest

from kit import envvars
from kit.envvars import EnvError, EnvSettings, rendezvous_problems


# envvars.apply writes os.environ by design: nothing a test here writes may reach the next test.
pytestmark = pytest.mark.usefixtures("restore_environ")


def test_defaults_without_any_variable():
    env = EnvSettings.from_environ({})
    assert (env.nnodes, env.node_rank, env.master_addr, env.master_port, env.nproc_per_node) == (1, 0, None, 0, None)
    assert not env.use_modelscope_hub and not env.force_torchrun and not env.under_torchrun
    assert envvars.master_addr(env) == "127.0.0.1" and rendezvous_problems(env) == []


def test_flags_and_numbers():
    env = EnvSettings.from_environ({"USE_MODELSCOPE_HUB": "1", "FORCE_TORCHRUN": "true", "NPROC_PER_NODE": " 4 ",
                                    "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": " ", "HF_HUB_OFFLINE": "yes"})
    assert env.use_modelscope_hub and env.force_torchrun and env.hf_hub_offline
    assert env.nproc_per_node == 4 and env.under_torchrun and env.master_addr is None


def test_a_word_where_a_number_belongs_is_a_person_s_mistake():
    with pytest.raises(EnvError, match="NNODES='two' is not an integer"):
        EnvSettings.from_environ({"NNODES": "two"})


@pytest.mark.parametrize("variables, problem", [
    ({"NNODES": "2", "MASTER_PORT": "29500"}, "needs MASTER_ADDR"),
    ({"NNODES": "2", "MASTER_ADDR": "10.0.0.1"}, "needs MASTER_PORT"),
    ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "1"}, "NODE_RANK must be between 0 and 1"),
    ({"NNODES": "0"}, "at least 1 node"),
    ({"NPROC_PER_NODE": "0"}, "at least 1 process"),
    ({"MASTER_PORT": "70000"}, "between 1 and 65535"),
])
def test_rendezvous_rules(variables, problem):
    assert any(problem in p for p in rendezvous_problems(EnvSettings.from_environ(variables)))


def test_one_node_needs_no_master_address():
    assert rendezvous_problems(EnvSettings.from_environ({"NNODES": "1", "NPROC_PER_NODE": "2"})) == []


def test_set_defaults_keeps_what_a_person_set():
    target = {"VLLM_WORKER_MULTIPROC_METHOD": "fork"}
    written = envvars.set_defaults({"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "X": "1"}, target)
    assert target == {"VLLM_WORKER_MULTIPROC_METHOD": "fork", "X": "1"} and written == {"X": "1"}


# ---------------------------------------------------------------- the notebooks' parameters (apply)

def test_apply_parameter_given_wins_none_keeps_the_inherited_value():
    target = {"ASCEND_RT_VISIBLE_DEVICES": "0", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
    applied = envvars.apply(visible_devices=[2, 3], use_modelscope_hub=None, npu_alloc_conf=None, target=target, modules={})
    assert target == {"ASCEND_RT_VISIBLE_DEVICES": "2,3", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
    rows = {s.variable: s for s in applied.settings}
    assert rows["ASCEND_RT_VISIBLE_DEVICES"].source == "notebook parameter" and rows["ASCEND_RT_VISIBLE_DEVICES"].replaced == "0"
    assert rows["PYTORCH_NPU_ALLOC_CONF"].source == "inherited" and rows["USE_MODELSCOPE_HUB"].source == "unset"
    assert applied.values()["ASCEND_RT_VISIBLE_DEVICES"] == "2,3" and not applied.warnings


@pytest.mark.parametrize("value, text", [(True, "1"), (False, "0"), ("1", "1"), ("0", "0"), ("yes", "1")])
def test_apply_use_modelscope_hub_as_the_variable_reads(value, text):
    target = {}
    envvars.apply(use_modelscope_hub=value, target=target, modules={})
    assert target["USE_MODELSCOPE_HUB"] == text
    assert EnvSettings.from_environ(target).use_modelscope_hub is (text == "1")


@pytest.mark.parametrize("value", ["0,a", "1,1", [], "-1"])
def test_apply_refuses_a_bad_card_list_naming_the_parameter(value):
    with pytest.raises(EnvError, match="visible_devices="):
        envvars.apply(visible_devices=value, target={}, modules={})


def test_apply_for_vllm_sets_the_quick_start_settings_unless_given_or_inherited():
    target = {}
    envvars.apply(vllm=True, target=target, modules={})
    assert target == {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "PYTORCH_NPU_ALLOC_CONF": "max_split_size_mb:256"}
    kept = {"VLLM_WORKER_MULTIPROC_METHOD": "fork", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
    applied = envvars.apply(vllm=True, target=kept, modules={})
    assert kept == {"VLLM_WORKER_MULTIPROC_METHOD": "fork", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
    assert "Cannot re-initialize NPU" in {s.variable: s for s in applied.settings}["VLLM_WORKER_MULTIPROC_METHOD"].read_by
    given = {}
    envvars.apply(npu_alloc_conf="max_split_size_mb:64", vllm=True, target=given, modules={})
    assert given["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:64"


def test_runtime_state_and_too_late_only_for_a_changed_runtime_variable():
    import types

    imported = {"torch_npu": types.ModuleType("torch_npu"), "torch": types.SimpleNamespace(npu=types.SimpleNamespace())}
    assert envvars.npu_runtime_state({}) == "not imported"
    assert envvars.npu_runtime_state(imported) == "imported"
    target = {"ASCEND_RT_VISIBLE_DEVICES": "0"}
    # the same value again (a cell run twice), and a variable the kit reads at each use: no warning
    quiet = envvars.apply(visible_devices="0", use_modelscope_hub=True, target=target, modules=imported)
    assert not quiet.warnings
    with pytest.warns(envvars.EnvTooLateWarning, match="may already have read it"):
        late = envvars.apply(npu_alloc_conf="max_split_size_mb:256", target=target, modules=imported)
    assert late.warnings and target["PYTORCH_NPU_ALLOC_CONF"] == "max_split_size_mb:256"
    assert envvars.npu_runtime_state() in ("not imported", "imported", "initialised")  # this process: reads, imports nothing
