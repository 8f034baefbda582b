"""Issue 20, chat and export: hostile or mistaken inputs end in one clear message, never in lost files or a traceback.

Every test here failed before its fix, except the few marked as guarding behaviour that already
held (replacing an untouched earlier export, an export_dir that is a file): export replaced a
folder a person had added files to, the operating system's refusals surfaced as tracebacks, and
chat inputs crashed the engine or ended the terminal loop in the middle of a conversation.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from kit import cli
from kit.chat import export as export_mod

# ---------------------------------------------------------------- export: never a file it did not write


def _cfg(model: Path, adapter: Path, target: Path):
    return export_mod.config_mod.from_dict({"model_name_or_path": str(model), "adapter_name_or_path": str(adapter),
                                            "template": "qwen", "export_dir": str(target)})


def _cli_export(capsys, model: Path, adapter: Path, target: Path | str, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["export", "--model_name_or_path", str(model), "--adapter_name_or_path", str(adapter),
                     "--template", "qwen", "--export_dir", str(target), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def earlier_export(tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "merged"
    export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, target))
    return target


def test_the_marker_lists_what_the_export_wrote(earlier_export: Path) -> None:
    marker = json.loads((earlier_export / export_mod.EXPORT_MARKER).read_text(encoding="utf-8"))
    on_disk = sorted(p.name for p in earlier_export.iterdir() if p.name != export_mod.EXPORT_MARKER)
    assert marker["files"] == on_disk and "model.safetensors" in on_disk


def test_replacing_refuses_a_folder_a_person_added_files_to(tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                            earlier_export: Path) -> None:
    (earlier_export / "notes.md").write_text("my eval results", encoding="utf-8")
    (earlier_export / "scripts").mkdir()
    (earlier_export / "scripts" / "serve.sh").write_text("vllm serve .", encoding="utf-8")
    before = {p.name: p.stat().st_mtime_ns for p in earlier_export.iterdir()}
    with pytest.raises(export_mod.ExportError) as info:
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert "notes.md" in str(info.value) and "scripts" in str(info.value)
    assert {p.name: p.stat().st_mtime_ns for p in earlier_export.iterdir()} == before  # nothing touched
    assert (earlier_export / "notes.md").read_text(encoding="utf-8") == "my eval results"
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]  # no staging left


def test_replacing_an_untouched_earlier_export_works(tiny_model_dir: Path, tiny_adapter_dir: Path, earlier_export: Path) -> None:
    """Guards what already held: the kit's own export, untouched, is replaced (notebook 30's rerun)."""
    export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert (earlier_export / "model.safetensors").is_file()
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]


def test_an_export_marker_without_a_file_list_is_not_replaced(tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                              earlier_export: Path) -> None:
    # An older kit's marker (or one a person edited): what the export wrote is not known, so nothing is replaced.
    marker = earlier_export / export_mod.EXPORT_MARKER
    marker.write_text(json.dumps({"template": "qwen"}), encoding="utf-8")
    with pytest.raises(export_mod.ExportError, match="does not list the files"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    marker.write_text("{not json", encoding="utf-8")
    with pytest.raises(export_mod.ExportError, match="does not list the files"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert (earlier_export / "model.safetensors").is_file()


def test_the_cli_takes_replace_earlier_export_and_keeps_its_promise(capsys, tiny_model_dir: Path, tiny_adapter_dir: Path,
                                                                   earlier_export: Path) -> None:
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export)
    assert code == 2 and "--replace_earlier_export" in err and "Traceback" not in err  # says how to replace it
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export, "--replace_earlier_export")
    assert code == 0, err
    (earlier_export / "eval.json").write_text("{}", encoding="utf-8")
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, earlier_export, "--replace_earlier_export", "true")
    assert code == 2 and "eval.json" in err and "Traceback" not in err
    assert (earlier_export / "eval.json").is_file()


# ---------------------------------------------------------------- export: the operating system's refusals


def _no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be written is refused before minutes of loading and merging."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before export_dir was checked")

    monkeypatch.setattr(export_mod.model_mod, "load_model", refuse)


def test_an_export_dir_through_a_file(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("a file, not a folder", encoding="utf-8")
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "afile" / "out")
    assert code == 2, err
    assert "afile" in err and "is a file" in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_an_export_dir_that_is_a_file(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    """Guards what already held, and now also before the model is loaded."""
    (tmp_path / "model.bin").write_text("mine", encoding="utf-8")
    _no_model_load(monkeypatch)
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, tmp_path / "model.bin")
    assert code == 2 and "is a file" in err and "Traceback" not in err
    assert (tmp_path / "model.bin").read_text(encoding="utf-8") == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_an_export_dir_that_cannot_be_written(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path,
                                              tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    _no_model_load(monkeypatch)
    try:
        code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, locked / "out")
    finally:
        locked.chmod(0o755)
    assert code == 2 and "locked" in err and "permission" in err.lower() and "Traceback" not in err
    assert list(locked.iterdir()) == []


def test_disk_full_while_saving(capsys, monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, tmp_path: Path) -> None:
    from transformers import PreTrainedModel

    def save_then_fill_the_disk(self, save_directory, **kwargs):
        (Path(save_directory) / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 1024)  # half written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(save_directory) / "model-00002-of-00002.safetensors"))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_then_fill_the_disk)
    target = tmp_path / "out" / "merged"
    code, out, err = _cli_export(capsys, tiny_model_dir, tiny_adapter_dir, target)
    assert code == 2, err
    assert "Traceback" not in err and str(target) in err
    assert "no space left" in err and "free space" in err.lower()  # what happened and what to do
    assert not target.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # the staging folder is gone, nothing half-written


def test_disk_full_keeps_an_earlier_export(monkeypatch, tiny_model_dir: Path, tiny_adapter_dir: Path, earlier_export: Path) -> None:
    from transformers import PreTrainedModel

    def disk_full(self, save_directory, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", disk_full)
    before = sorted(p.name for p in earlier_export.iterdir())
    with pytest.raises(export_mod.ExportError, match="space"):
        export_mod.export_model(_cfg(tiny_model_dir, tiny_adapter_dir, earlier_export), replace_earlier_export=True)
    assert sorted(p.name for p in earlier_export.iterdir()) == before
    assert sorted(p.name for p in earlier_export.parent.iterdir()) == ["merged"]
