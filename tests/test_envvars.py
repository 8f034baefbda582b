"""The documented environment variables: read in one place, with the launcher's and the doctor's rules."""

from __future__ import annotations

import pytest

from kit import envvars
from kit.envvars import EnvError, EnvSettings, rendezvous_problems


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
