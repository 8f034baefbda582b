import sys

import pytest

from kit import device
from kit.envvars import EnvSettings


def test_visible_devices_parsed_and_renumbered():
    assert device.parse_visible_devices(None) is None
    assert device.parse_visible_devices("4,5") == [4, 5]
    assert device.parse_visible_devices(" 0 , 2 ") == [0, 2]
    with pytest.raises(ValueError, match="'x' , which|'x', which|not a device number"):
        device.parse_visible_devices("0,x")
    with pytest.raises(ValueError, match="twice"):
        device.parse_visible_devices("1,1")


def test_cpu_detected_and_says_why_npu_is_not_used():
    info = device.detect("auto", EnvSettings.from_environ({}))
    assert info.kind in ("cpu", "cuda")
    if info.kind == "cpu":
        assert info.backend == "gloo" and info.count == 1 and not info.fp16
        assert "torch_npu" in info.npu_unavailable
        assert "NPU not used" in info.summary()


def test_broken_torch_npu_falls_back_with_its_error(tmp_path, monkeypatch):
    # A torch_npu that cannot load (no CANN) raises at import; the kit must carry on and say why.
    (tmp_path / "torch_npu").mkdir()
    (tmp_path / "torch_npu" / "__init__.py").write_text("raise ImportError('libascendcl.so: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(device, "_torch_npu_state", {})
    module, reason = device.import_torch_npu()
    assert module is None and "libascendcl.so" in reason and "set_env.sh" in reason
    info = device.detect(None, EnvSettings.from_environ({}))
    assert info.kind != "npu" and "libascendcl.so" in info.npu_unavailable
    with pytest.raises(device.DeviceError, match="device: npu was asked for but cannot be used"):
        device.detect("npu", EnvSettings.from_environ({}))
    sys.modules.pop("torch_npu", None)


def test_unknown_device_name():
    with pytest.raises(device.DeviceError, match="not one of auto, npu, cuda, cpu"):
        device.detect("tpu", EnvSettings.from_environ({}))


def test_absent_device_asked_for_is_a_person_s_mistake():
    for kind in ("npu", "cuda"):
        with pytest.raises(device.DeviceError, match=f"device: {kind} was asked for.*device: auto"):
            device.detect(kind, EnvSettings.from_environ({}))


def test_a_launcher_does_not_open_a_context_on_a_card(monkeypatch):
    """query=False asks only kind and count: the name or bf16 query would hold memory on card 0."""
    import torch

    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: asked.append("name") or "H200")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a: asked.append("bf16") or True)
    info = device.detect("cuda", EnvSettings.from_environ({}), query=False)
    assert (info.kind, info.count, asked) == ("cuda", 2, [])
    assert device.detect("cuda", EnvSettings.from_environ({})).name == "H200" and asked == ["name", "bf16"] or asked == ["bf16", "name"]


def test_precision_falls_back_where_unsupported():
    cpu = device.DeviceInfo("cpu", 1, "gloo", True, False, "cpu", None, None)
    assert device.resolve_precision(cpu, True, False)[:2] == (False, False)
    assert "fp16 was asked for" in device.resolve_precision(cpu, True, False)[2]
    assert device.resolve_precision(cpu, False, True) == (False, True, None)
    old_npu = device.DeviceInfo("npu", 1, "hccl", False, True, "Ascend910A", None, None)
    assert "does not support bf16" in device.resolve_precision(old_npu, False, True)[2]
    assert device.resolve_precision(old_npu, True, False) == (True, False, None)


def test_alloc_conf_and_visible_devices_passed_to_children():
    env = EnvSettings.from_environ({"PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True", "ASCEND_RT_VISIBLE_DEVICES": "2,3"})
    out = device.subprocess_env(env, {})
    assert out == {"PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True", "ASCEND_RT_VISIBLE_DEVICES": "2,3"}
