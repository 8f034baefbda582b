"""Tests of ``kit.estimate``: exact counts against real models and peft, memory arithmetic, devices, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import estimate as est
from kit.estimate import cli as estimate_cli
from kit.estimate.devices import DeviceMemoryError, lookup_device
from kit.estimate import GiB, EstimateError, estimate

TINY = {  # the shape of the reference tiny-qwen (hidden 128, 2 layers, vocab 3000)
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 128, "intermediate_size": 256,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 3000,
    "tie_word_embeddings": False, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
}
QWEN15_7B = {  # Qwen1.5-7B's config.json (the quick start's model): 7,721,324,544 parameters
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 151936,
    "tie_word_embeddings": False, "max_position_embeddings": 32768,
}
ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_config(folder: Path, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def item(e, name: str) -> int:
    return {it.name: it.bytes for it in e.items}[name]


# -------------------------------------------------------------------------------- exact counts

LLAMA = {**TINY, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": True, "mlp_bias": True}
PHI3 = {**TINY, "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "pad_token_id": 0}  # fused qkv_proj, gate_up_proj


def real_counts(cfg: dict, targets: list[str], rank: int = 8) -> tuple[int, int]:
    """(base, trainable) of the real model, weights allocated, with peft's LoRA: what the estimate must equal."""
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "architectures"}))
    base = sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, LoraConfig(r=rank, target_modules=targets))
    return base, sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


@pytest.mark.parametrize("cfg, every_linear", [
    (TINY, list(ALL)),
    ({**TINY, "tie_word_embeddings": True, "num_key_value_heads": 1}, list(ALL)),
    (LLAMA, list(ALL)),
    ({**TINY, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "head_dim": 48, "tie_word_embeddings": True}, list(ALL)),
    ({**TINY, "model_type": "mistral", "architectures": ["MistralForCausalLM"]}, list(ALL)),
    (PHI3, ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),  # a layout the old hand count did not know
], ids=["qwen2", "qwen2-tied-mqa", "llama-bias", "qwen3", "mistral", "phi3"])
def test_counts_equal_the_real_model_and_peft(cfg, every_linear):
    base, all_trainable = real_counts(cfg, every_linear)
    counts = est.count_parameters(cfg, 8, "all")
    assert (counts.base, counts.trainable) == (base, all_trainable)
    assert sorted(counts.targets) == sorted(every_linear)  # "all": every linear layer but the output head
    some = ["o_proj", "down_proj"] if "qkv_proj" in every_linear else ["q_proj", "v_proj"]
    assert est.count_parameters(cfg, 8, ",".join(some)).trainable == real_counts(cfg, some)[1]
    e = estimate(cfg, lora_rank=8, lora_target=",".join(some), device="910B")
    assert e.base_params == base and e.total_params == base + real_counts(cfg, some)[1]


def test_counts_of_the_embedded_model_folder_equal_its_loaded_weights():
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model

    from kit import model as model_mod
    from kit import tiny

    loaded = model_mod.load_model(tiny.path(), dtype=torch.float32)
    base = sum(p.numel() for p in loaded.parameters())
    peft_model = get_peft_model(loaded, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    e = estimate(tiny.path(), lora_rank=8, lora_target="q_proj,v_proj", device="910B")
    assert (e.base_params, e.trainable_params) == (base, sum(p.numel() for p in peft_model.parameters() if p.requires_grad))


def test_qwen15_7b_count_and_lora_formula():
    counts = est.count_parameters(QWEN15_7B, 8, ["q_proj", "v_proj"])
    assert counts.base == 7_721_324_544
    # q_proj and v_proj are 4096 -> 4096: r * (in + out) each, in 32 layers.
    assert counts.trainable == 32 * 2 * 8 * (4096 + 4096)


def test_a_layout_other_than_the_dense_decoders_says_its_activations_are_rough():
    e = estimate(PHI3, device="910B")
    assert any("phi3 differs" in n for n in e.notes)
    assert not any("differs" in n for n in estimate(TINY, device="910B").notes)


def test_parse_targets():
    assert est.parse_targets("all", ALL) == ALL
    assert est.parse_targets(" q_proj, v_proj ", ALL) == ("q_proj", "v_proj")
    assert est.parse_targets(["v_proj", "q_proj", "v_proj"], ALL) == ("v_proj", "q_proj")
    with pytest.raises(EstimateError, match="q_prj \\(did you mean q_proj\\?\\)"):
        est.parse_targets("q_prj,v_proj", ALL)
    with pytest.raises(EstimateError, match="lm_head"):
        est.parse_targets("lm_head", ALL)
    with pytest.raises(EstimateError, match="empty"):
        est.parse_targets("", ALL)
    with pytest.raises(EstimateError, match="qkv_proj.*gate_up_proj"):  # the model's own layer names are offered
        estimate(PHI3, lora_target="q_proj", device="910B")


@pytest.mark.parametrize("cfg, message", [
    ({**TINY, "model_type": "not_a_model"}, "not_a_model"),
    ({**TINY, "vocab_size": "3000"}, "transformers cannot build this model"),
])
def test_bad_model_config(cfg, message):
    with pytest.raises(EstimateError, match=message):
        estimate(cfg, device="910B")


def test_config_file_errors(tmp_path):
    with pytest.raises(EstimateError, match="not found"):
        estimate(tmp_path / "missing", device="910B")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(EstimateError, match="not valid JSON"):
        estimate(tmp_path, device="910B")


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "int8"}, "dtype"), ({"zero_stage": 4}, "zero_stage"), ({"cutoff_len": 0}, "cutoff_len"),
    ({"batch_size": 1.5}, "batch_size"), ({"attention": "flash"}, "attention"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(EstimateError, match=message):
        estimate(TINY, device="910B", **kwargs)


# ------------------------------------------------------------------------------ memory arithmetic

def test_estimate_from_a_config_file(tmp_path):
    e = estimate(write_config(tmp_path / "m", TINY), lora_rank=8, lora_target="q_proj,v_proj", dtype="fp32", device="910B")
    assert (e.base_params, e.trainable_params) == real_counts(TINY, ["q_proj", "v_proj"])
    assert e.total_params == e.base_params + e.trainable_params
    assert item(e, "base weights") == e.base_params * 4
    assert item(e, "LoRA gradients") == e.trainable_params * 4
    assert item(e, "optimizer state") == e.trainable_params * 8  # fp32 without DeepSpeed: no separate master copy
    assert e.per_device_bytes == sum(it.bytes for it in e.items)


def test_precision_and_zero_sharding():
    one = estimate(QWEN15_7B, dtype="bf16", zero_stage=0, num_devices=1, device="910B")
    t = one.trainable_params
    assert item(one, "base weights") == one.base_params * 2
    assert item(one, "optimizer state") == t * 12  # bf16 under DeepSpeed: fp32 master + 2 moments
    assert item(estimate(QWEN15_7B, dtype="bf16", zero_stage=None, device="910B"), "optimizer state") == t * 8

    z2 = estimate(QWEN15_7B, dtype="bf16", zero_stage=2, num_devices=4, device="910B")
    assert item(z2, "base weights") == item(one, "base weights")  # ZeRO-2 does not shard weights
    assert item(z2, "optimizer state") == -(-t * 12 // 4) and item(z2, "LoRA gradients") == -(-t * 4 // 4)
    z1 = estimate(QWEN15_7B, dtype="bf16", zero_stage=1, num_devices=4, device="910B")
    assert item(z1, "LoRA gradients") == t * 4 and item(z1, "optimizer state") == item(z2, "optimizer state")
    z3 = estimate(QWEN15_7B, dtype="bf16", zero_stage=3, num_devices=4, device="910B")
    assert item(z3, "base weights") == -(-one.base_params * 2 // 4)
    assert z3.per_device_bytes < z2.per_device_bytes < one.per_device_bytes


def test_activations_scale_and_checkpointing_saves_memory():
    def act(**kw):
        return item(estimate(QWEN15_7B, device="910B", **{"dtype": "bf16", "cutoff_len": 1024, "batch_size": 1, **kw}), "activations")

    assert act(gradient_checkpointing=False) > 3 * act(gradient_checkpointing=True)
    assert act(cutoff_len=2048) == pytest.approx(2 * act(cutoff_len=1024), rel=0.01)
    assert act(batch_size=2) > 2 * act(batch_size=1)  # a padded batch also keeps the mask per layer
    assert act(dtype="fp32", gradient_checkpointing=False) > act(gradient_checkpointing=False)
    assert act(attention="eager", gradient_checkpointing=False) > act(gradient_checkpointing=False)
    assert act(lora_target="all", gradient_checkpointing=False) > act(lora_target="q_proj,v_proj", gradient_checkpointing=False)


def test_activation_formula_by_hand():
    shape = est.count_parameters(TINY).shape
    got, _ = est.activation_bytes(shape, ["q_proj", "v_proj"], 8, 4, batch=1, seq=10, gradient_checkpointing=False)
    h, i, q, kv, heads, V = 128, 256, 128, 64, 4, 3000
    per_layer = 2 * (4 * h + 4) + h * 4 + (2 * q + 2 * kv) * 4 + 4 * heads + 3 * i * 4 + 2 * 8 * 4
    assert got == 10 * (2 * per_layer + (4 * h + 4) + V * 12)


# ----------------------------------------------------------------------------------- devices

@pytest.mark.parametrize("name, gib, kind", [
    ("910B", 64, "npu"), ("Ascend 910B", 64, "npu"), ("910B4", 32, "npu"), ("ascend-910b3", 64, "npu"),
    ("A100-80G", 80, "cuda"), ("a100 80GB", 80, "cuda"), ("H200", 139.8, "cuda"),
])
def test_known_devices(name, gib, kind):
    display, memory, k = lookup_device(name)
    assert memory == int(gib * GiB) and k == kind


def test_cpu_device_is_system_ram_and_unknown_is_explained():
    display, memory, kind = lookup_device("cpu")
    assert kind == "cpu" and memory > GiB
    with pytest.raises(DeviceMemoryError, match="not in the table.*910B4"):
        lookup_device("910C")


def test_verdicts_and_suggestions():
    fits = estimate(QWEN15_7B, lora_target="q_proj,v_proj", dtype="bf16", cutoff_len=1024, zero_stage=0, device="910B")
    assert fits.verdict == "fits" and not fits.suggestions  # the quick start on one 910B
    big = estimate(QWEN15_7B, dtype="bf16", cutoff_len=4096, batch_size=8, gradient_checkpointing=False, zero_stage=2,
                   num_devices=8, device="910B4")
    assert big.verdict == "does not fit"
    assert any(s.startswith("turn gradient checkpointing on") for s in big.suggestions)
    assert any("ds_z3_config.json" in s for s in big.suggestions)
    assert big.suggestions[-1].startswith("all of the above") and big.suggestions[-1].endswith("(fits)")
    need = estimate(QWEN15_7B, dtype="bf16", device="910B").per_device_bytes / GiB
    assert estimate(QWEN15_7B, dtype="bf16", device="910B", device_memory_gib=need / 0.95).verdict == "tight"
    assert estimate(QWEN15_7B, dtype="bf16", device="910B", device_memory_gib=need * 1.2).verdict == "fits"
    given = estimate(TINY, device="MyCard", device_memory_gib=8)
    assert given.device_name == "MyCard" and given.device_source == "given" and given.device_kind == "cuda"


def test_cpu_processes_share_ram():
    e = estimate(TINY, dtype="fp32", device="cpu", num_devices=4)
    assert e.device_kind == "cpu" and e.processes_sharing_device == 4 and e.needed_bytes == 4 * e.per_device_bytes


def test_detected_device_on_this_machine():
    e = estimate(TINY, dtype="fp32")  # no device named: detect (CPU here, or whatever accelerator the machine has)
    assert e.device_source == "detected" and e.device_memory_bytes > 0 and e.verdict == "fits"


# ---------------------------------------------------------------------------------- rendering

def test_render_text_html_json_say_what_is_exact():
    e = estimate(QWEN15_7B, lora_target="q_proj,v_proj", dtype="bf16", cutoff_len=1024, zero_stage=0, device="910B")
    text = e.render_text()
    assert text.startswith("FITS: needs about") and "Ascend 910B has 64.00 GiB" in text
    assert "7,721,324,544 base parameters (exact)" in text
    rows = {it.name: next(line for line in text.splitlines() if line.startswith("  " + it.name)) for it in e.items}
    assert " exact " in rows["base weights"] and " estimate " in rows["activations"] and " estimate " in rows["framework overhead"]
    html = e._repr_html_()
    assert html.count("<tr>") == len(e.items) + 2 and "estimate" in html
    data = json.loads(json.dumps(e.to_dict()))
    assert data["verdict"] == "fits" and data["total_params"] == e.total_params
    assert [i["exact"] for i in data["items"]] == [True, True, True, True, False, False]


# ---------------------------------------------------------------------------------------- CLI

def test_estimate_main_with_the_kit_config(tmp_path, capsys):
    pytest.importorskip("kit.config", reason="kit.config (the lead's config loader) is not importable yet; estimate_main needs it")
    model = write_config(tmp_path / "model", TINY)
    yaml = tmp_path / "cfg.yaml"
    yaml.write_text(f"model_name_or_path: {model}\nfinetuning_type: lora\nlora_target: q_proj,v_proj\ncutoff_len: 256\n"
                    "per_device_train_batch_size: 2\ngradient_accumulation_steps: 4\nbf16: true\n"
                    "deepspeed: examples/deepspeed/ds_z3_config.json\n")
    code = estimate_cli.estimate_main([str(yaml), "lora_rank=16", "--device", "910B", "--json", "--nproc", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(out)
    assert (data["zero_stage"], data["num_devices"], data["dtype"], data["lora_rank"], data["cutoff_len"]) == (3, 4, "bf16", 16, 256)
    assert data["lora_targets"] == ["q_proj", "v_proj"] and data["gradient_checkpointing"] is True
    assert data["trainable_params"] == real_counts(TINY, ["q_proj", "v_proj"], rank=16)[1]
    # A misspelt key is a person's mistake: a message and exit status 2, no traceback.
    assert estimate_cli.estimate_main([str(yaml), "lora_rnak=16", "--device", "910B"]) == 2
    assert "lora_rnak" in capsys.readouterr().err


@pytest.mark.parametrize("flags, says", [
    (["--device_memory_gib", "inf"], "--device_memory_gib: inf is not a memory size"),
    (["--device_memory_gib", "nan"], "--device_memory_gib: nan is not a memory size"),
    (["--device_memory_gib", "-5"], "--device_memory_gib: -5.0 is not a memory size"),
    (["--device_memory_gib", "0"], "--device_memory_gib: 0.0 is not a memory size"),
    (["--nproc", "0"], "--nproc: 0 is not a count"),
    (["--nnodes", "-1"], "--nnodes: -1 is not a count"),
])
def test_estimate_refuses_memory_and_counts_that_are_not(tmp_path, capsys, flags, says):
    model = write_config(tmp_path / "model", TINY)
    yaml = tmp_path / "cfg.yaml"
    yaml.write_text(f"model_name_or_path: {model}\nfinetuning_type: lora\n")
    with pytest.raises(SystemExit) as exc:
        estimate_cli.estimate_main([str(yaml), *flags])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and says in err and "Traceback" not in err, err


def test_text_and_html_in_chinese_keep_english_codes_in_json():
    from kit import i18n

    i18n.set_language("zh")
    try:
        fits = estimate(QWEN15_7B, lora_target="q_proj,v_proj", dtype="bf16", cutoff_len=1024, zero_stage=0, device="910B")
        big = estimate(QWEN15_7B, dtype="fp32", cutoff_len=2048, batch_size=4, gradient_checkpointing=False, num_devices=2,
                       zero_stage=0, device="910B4")
        text, html, big_text = fits.render_text(), fits._repr_html_(), big.render_text()
    finally:
        i18n.set_language(None)
    assert text.startswith("放得下：约需每个设备") and "Ascend 910B：64.00 GiB（占 " in text
    assert "基座模型参数 7,721,324,544 个（精确）" in text and "梯度检查点开启" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert " 精确 " in rows["基座模型权重"] and " 估算 " in rows["激活值"] and " 估算 " in rows["框架开销"] and "合计" in rows
    assert "<th>占用项</th>" in html and "基座模型权重" in html and "放得下" in html
    assert big_text.startswith("放不下：") and "可尝试：开启梯度检查点" in big_text
    assert big.suggestions[-1].startswith("以上全部一起用") and big.suggestions[-1].endswith("（放得下）")
    # JSON keeps the English codes: the verdict and the row names (bench/estimate_accuracy.py looks rows up by name).
    assert fits.to_dict()["verdict"] == "fits" and big.verdict == "does not fit"
    assert [it["name"] for it in big.to_dict()["items"]][:2] == ["base weights", "LoRA weights"]
    assert fits.render_text().startswith("FITS: needs about")  # English again once the language is reset


# ------------------------------------------------------------- the example YAMLs' models, not on this machine

EXAMPLES = Path(est.__file__).resolve().parents[1] / "examples"
STORED_NOTE = "not on this machine, so the estimate uses the kit's stored copy of the model's shape"


def offline_empty_cache(tmp_path, monkeypatch) -> Path:
    """HF_HUB_OFFLINE=1 and an empty Hugging Face cache (given as cache_dir too: huggingface_hub reads HF_HOME at import)."""
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.delenv("USE_MODELSCOPE_HUB", raising=False)
    return cache / "hub"


@pytest.mark.parametrize("device, gib", [("910B", 64), ("910B4", 32)])
@pytest.mark.parametrize("yaml, base", [("qwen1_5_lora_sft_ds.yaml", 7_721_324_544), ("qwen3_lora_sft.yaml", 4_022_468_096)])
def test_both_tracks_estimate_offline_from_the_stored_shape(tmp_path, monkeypatch, capsys, yaml, base, device, gib):
    pytest.importorskip("kit.config", reason="estimate_main needs kit.config")
    cache = offline_empty_cache(tmp_path, monkeypatch)
    code = estimate_cli.estimate_main([str(EXAMPLES / yaml), f"cache_dir={cache}", "--device", device, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["base_params"] == base and data["device_memory_bytes"] == gib * GiB
    assert 8 * GiB < data["per_device_bytes"] < 24 * GiB and data["verdict"] == "fits"  # both fit one card of either kind
    assert STORED_NOTE in data["notes"][0] and "model_shapes.json" in data["notes"][0]
    # The text says it too, and so does a later step's estimate.
    assert estimate_cli.estimate_main([str(EXAMPLES / yaml), f"cache_dir={cache}", "--device", device]) == 0
    text = capsys.readouterr().out
    assert text.startswith("FITS: needs about") and STORED_NOTE in text
    assert estimate_cli.estimate_main([str(EXAMPLES / yaml), f"cache_dir={cache}", "--device", device, "--step", "chat"]) == 0
    assert STORED_NOTE in capsys.readouterr().out


def test_the_stored_note_in_chinese(tmp_path, monkeypatch, capsys):
    pytest.importorskip("kit.config", reason="estimate_main needs kit.config")
    from kit import i18n

    cache = offline_empty_cache(tmp_path, monkeypatch)
    i18n.set_language("zh")
    try:
        assert estimate_cli.estimate_main([str(EXAMPLES / "qwen3_lora_sft.yaml"), f"cache_dir={cache}", "--device", "910B4"]) == 0
    finally:
        i18n.set_language(None)
    text = capsys.readouterr().out
    assert "注：本机没有 Qwen/Qwen3-4B-Instruct-2507，因此估算使用 kit 自带的该模型结构副本" in text
    assert text.startswith("放得下：约需每个设备") and "Ascend 910B4：32.00 GiB（占 " in text


def test_stored_model_config_matches_ids_in_any_case_and_names_its_source():
    data = json.loads(est.STORED_SHAPES_FILE.read_text(encoding="utf-8"))
    assert set(data["models"]) == {"Qwen/Qwen1.5-7B", "Qwen/Qwen3-4B-Instruct-2507"}
    assert all("huggingface.co" in entry["source"] for entry in data["models"].values())
    for name in ("qwen/Qwen1.5-7B", "Qwen/Qwen1.5-7B", "QWEN/qwen1.5-7b"):
        stored = est.stored_model_config(name)
        assert stored["_name_or_path"] == name
        assert {k: stored[k] for k in QWEN15_7B} == QWEN15_7B  # the figures the tests above use for Qwen1.5-7B
    qwen3 = est.stored_model_config("Qwen/Qwen3-4B-Instruct-2507")
    assert (qwen3["hidden_size"], qwen3["head_dim"], qwen3["num_key_value_heads"], qwen3["tie_word_embeddings"]) == (2560, 128, 8, True)
    assert est.stored_model_config("someone/unknown-model") is None and est.stored_model_config(None) is None
    # The wheel ships it (setup.py's package data).
    setup_py = (Path(est.__file__).resolve().parents[2] / "setup.py").read_text(encoding="utf-8")
    assert '"estimate/*.json"' in setup_py


def fake_hub_snapshot(cache: Path, model_id: str, config: dict) -> Path:
    """A Hugging Face cache entry holding config.json, laid out as huggingface_hub writes it."""
    repo = cache / ("models--" + model_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return write_config(repo / "snapshots" / commit, config)


def test_a_cached_or_local_model_is_used_not_the_stored_copy(tmp_path, monkeypatch, capsys):
    pytest.importorskip("kit.config", reason="estimate_main needs kit.config")
    cache = offline_empty_cache(tmp_path, monkeypatch)
    small = {**TINY, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "head_dim": 32, "tie_word_embeddings": True}
    fake_hub_snapshot(cache, "Qwen/Qwen3-4B-Instruct-2507", small)
    folder, note = est.model_config_source("Qwen/Qwen3-4B-Instruct-2507", str(cache))
    assert note is None and isinstance(folder, Path) and (folder / "config.json").is_file()
    yaml = EXAMPLES / "qwen3_lora_sft.yaml"
    assert estimate_cli.estimate_main([str(yaml), f"cache_dir={cache}", "--device", "910B", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["base_params"] == est.count_parameters(small).base and not any(STORED_NOTE in n for n in data["notes"])
    # A local folder comes first as well.
    local = write_config(tmp_path / "Qwen1.5-7B", TINY)
    assert estimate_cli.estimate_main([str(EXAMPLES / "qwen1_5_lora_sft_ds.yaml"), f"model_name_or_path={local}",
                                       f"cache_dir={cache}", "--device", "910B", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["base_params"] == est.count_parameters(TINY).base and not any(STORED_NOTE in n for n in data["notes"])


def test_an_unknown_model_offline_still_fails_with_the_clear_message(tmp_path, monkeypatch, capsys):
    pytest.importorskip("kit.config", reason="estimate_main needs kit.config")
    cache = offline_empty_cache(tmp_path, monkeypatch)
    code = estimate_cli.estimate_main([str(EXAMPLES / "qwen3_lora_sft.yaml"), "model_name_or_path=someone/unknown-model",
                                       f"cache_dir={cache}", "--device", "910B"])
    err = capsys.readouterr().err
    assert code == 2 and "'someone/unknown-model' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading" in err
    assert STORED_NOTE not in err
