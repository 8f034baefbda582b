"""``kit export`` (kit/chat/export.py): a merged, standalone model that plain transformers loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from kit import cli
from kit.chat import Engine
from kit.chat import export as export_mod
from kit.data import template as template_mod

CONVERSATION = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Who are you?"}]


def _export(capsys, model: Path, adapter: Path | str | None, export_dir: Path, *extra: str) -> tuple[int, str, str]:
    args = ["export", "--model_name_or_path", str(model), "--template", "qwen", "--finetuning_type", "lora",
            "--export_dir", str(export_dir), *extra]
    if adapter is not None:
        args += ["--adapter_name_or_path", str(adapter)]
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "merged"
    export_mod.export_model(export_mod.config_mod.from_dict({
        "model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir),
        "template": "qwen", "finetuning_type": "lora", "export_dir": str(out)}))
    return out


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


def test_export_through_the_cli(capsys, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    code, out, err = _export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "merged")
    assert code == 0, err
    files = json.loads(out.strip().splitlines()[-1])["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} <= set(files)
    assert not {"adapter_config.json", "adapter_model.safetensors"} & set(files)
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no staging folder left behind


def test_merged_model_gives_the_logits_of_base_plus_adapter(exported: Path, tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(str(exported), dtype=torch.float32)
    assert not hasattr(merged, "peft_config")
    assert "peft" not in (exported / "config.json").read_text(encoding="utf-8")
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, str(tiny_adapter_dir))  # unmerged: base + B A x on the fly
    ids = list(range(3, 60))
    expected = _logits(with_adapter, ids)
    assert torch.allclose(_logits(merged, ids), expected, atol=1e-4, rtol=1e-4)
    with with_adapter.disable_adapter():
        assert not torch.allclose(_logits(with_adapter, ids), expected, atol=1e-3)  # the adapter matters


def test_exported_chat_template_matches_the_kit_template(exported: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(exported))
    qwen = template_mod.get("qwen")
    rendered = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert rendered == tokenizer.decode(qwen.encode_prompt(tokenizer, CONVERSATION, qwen.default_system))
    with_system = [{"role": "system", "content": "Be short."}, *CONVERSATION]
    assert tokenizer.apply_chat_template(with_system, tokenize=False).startswith("<|im_start|>system\nBe short.<|im_end|>\n")
    generation = json.loads((exported / "generation_config.json").read_text(encoding="utf-8"))
    eos = generation["eos_token_id"]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in (eos if isinstance(eos, list) else [eos])


def test_chat_with_the_export_equals_chat_with_the_adapter(exported: Path, tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    settings = dict(do_sample=False, max_new_tokens=24)
    assert Engine(exported, **settings).chat(CONVERSATION) == Engine(tiny_model_dir, tiny_adapter_dir, **settings).chat(CONVERSATION)


def test_llamafactory_layout_adapter_exports(capsys, tiny_model_dir: Path, lf_adapter_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    code, _, err = _export(capsys, tiny_model_dir, lf_adapter_dir, tmp_path / "merged")
    assert code == 0, err
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"), dtype=torch.float32)
    ids = list(range(3, 40))
    assert not torch.allclose(_logits(merged, ids), _logits(base, ids), atol=1e-3)


def test_refuses_a_non_empty_export_dir(capsys, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "merged"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    code, _, err = _export(capsys, tiny_model_dir, tiny_adapter_dir, target)
    assert code == 2 and "exists and is not empty" in err and "Traceback" not in err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_an_empty_export_dir_is_fine(capsys, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "merged").mkdir()
    code, _, err = _export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "merged")
    assert code == 0, err
    assert (tmp_path / "merged" / "model.safetensors").is_file()


def test_a_failure_leaves_no_half_written_export(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    # The last step (the rename) fails: everything written so far must be removed, and the person told why.
    monkeypatch.setattr(os, "replace", disk_full)
    cfg = export_mod.config_mod.from_dict({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir),
                                           "template": "qwen", "export_dir": str(tmp_path / "merged")})
    with pytest.raises(export_mod.ExportError, match="no space left"):
        export_mod.export_model(cfg)
    assert list(tmp_path.iterdir()) == []


def test_bad_export_input(capsys, tiny_model_dir: Path, tmp_path: Path) -> None:
    code, _, err = _export(capsys, tiny_model_dir, tmp_path / "nowhere", tmp_path / "merged")
    assert code == 2 and "does not exist" in err
    code, _, err = _export(capsys, tiny_model_dir, tiny_model_dir, tmp_path / "merged")
    assert code == 2 and "is not a LoRA adapter" in err
    code = cli.main(["export", "--model_name_or_path", str(tiny_model_dir), "--template", "qwen"])
    err = capsys.readouterr().err
    assert code == 2 and "export_dir: missing" in err and "Traceback" not in err
    assert not (tmp_path / "merged").exists()


def test_only_an_earlier_kit_export_is_replaced(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    """What notebook 30 does on a rerun: replace its own export, never a person's folder (export_dir=. or ~/models)."""
    def cfg(target: Path):
        return export_mod.config_mod.from_dict({"model_name_or_path": str(tiny_model_dir), "adapter_name_or_path": str(tiny_adapter_dir),
                                                "template": "qwen", "export_dir": str(target)})

    target = tmp_path / "merged"
    export_mod.export_model(cfg(target))
    assert json.loads((target / export_mod.EXPORT_MARKER).read_text())["template"] == "qwen"
    export_mod.export_model(cfg(target), replace_earlier_export=True)
    assert (target / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no staging or old folders left
    mine = tmp_path / "models"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(export_mod.ExportError, match="not an export the kit wrote"):
        export_mod.export_model(cfg(mine), replace_earlier_export=True)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


def test_export_messages_in_chinese(tmp_path: Path, capsys) -> None:
    from kit import i18n

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    i18n.set_language("zh")
    try:
        with pytest.raises(export_mod.ExportError, match="（它不是 kit 导出的结果：里面没有 kit_export.json）；请换一个新文件夹"):
            export_mod._check_export_dir(folder, replace_earlier_export=True)
        with pytest.raises(export_mod.ExportError, match="是一个文件；请给出一个尚不存在的文件夹"):
            export_mod._check_export_dir(folder / "keep.txt")
        assert cli.main(["export", "--help"]) == 0
        assert capsys.readouterr().out.startswith("用法：kit export")
    finally:
        i18n.set_language(None)
    assert cli.main(["export", "--help"]) == 0 and capsys.readouterr().out.startswith("usage: kit export")
