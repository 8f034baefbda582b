"""Every ``kit`` subcommand reads its command line with one parser (kit.command_parser.CommandParser).

The same ``-h`` layout everywhere; a mistake is the usage line and one ``error: ...`` line, exit status 2,
nothing written and no traceback; all of it in the person's language, argparse's own words included.
"""

from __future__ import annotations

import gettext
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit import cli, i18n
from kit.command_parser import CommandParser, UsageExit, argparse_language

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE_VARIABLES = ("KIT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

# A mistake on each command's line, and what argparse says about it (English, Chinese).
UNKNOWN_FLAG = {  # the config commands take any --key as a config key: a short flag is unknown to them all
    "train": ["c.yaml", "-x"], "preprocess": ["c.yaml", "-x"], "estimate": ["c.yaml", "-x"], "chat": ["-x"],
    "export": ["-x"], "doctor": ["--no-such-flag"], "demo": ["--no-such-flag"], "keys": ["--no-such-flag"],
    "batch": ["nb.ipynb", "-p", "x", "1", "--no-such-flag"],
}
MISSING = {
    "train": ([], "CONFIG.yaml"), "preprocess": (["a=1"], "CONFIG.yaml"), "estimate": (["--json"], "CONFIG.yaml"),
    "batch": (["-p", "x", "1"], "NOTEBOOK"), "doctor": (["--device"], "--device"), "demo": (["--run_dir"], "--run_dir"),
}
SAYS = {
    "en": {"usage": "usage: ", "error": "error: ", "unknown": "unrecognized arguments: ",
           "required": "the following arguments are required: ", "one": "expected one argument",
           "options": "\noptions:\n  -h, --help ", "help": "show this help message and exit"},
    "zh": {"usage": "用法：", "error": "错误：", "unknown": "无法识别的参数：", "required": "缺少以下必需的参数：",
           "one": "需要一个值", "options": "\n选项:\n  -h, --help ", "help": "显示此帮助信息并退出"},
}


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch):
    for name in LANGUAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


def _in(lang: str, how: str, monkeypatch) -> list[str]:
    """The language chosen as a person would: the locale (LANG) or ``kit --lang``; the words to put first."""
    if how == "locale":
        monkeypatch.setenv("LANG", "zh_CN.UTF-8" if lang == "zh" else "en_US.UTF-8")
        return []
    return ["--lang", lang]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_mistake(code: int, out: str, err: str, command: str, says: dict[str, str]) -> str:
    """Exit 2, nothing on stdout, the usage then one error line, no traceback; the error line."""
    assert code == 2, (code, out, err)
    assert out == "" and "Traceback" not in err, err
    assert err.startswith(says["usage"] + f"kit {command} "), err
    lines = err.rstrip("\n").split("\n")
    assert lines[-1].startswith(says["error"]) and all(not line.startswith(says["error"]) for line in lines[:-1]), err
    assert all(line.startswith(" ") for line in lines[1:-1]), err  # a long usage wraps; nothing else comes between
    return lines[-1]


# ---------------------------------------------------------------- help

@pytest.mark.parametrize("lang, how", [("en", "locale"), ("zh", "locale"), ("zh", "flag")])
@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_the_same_help_layout(command, lang, how, monkeypatch, capsys):
    says = SAYS[lang]
    for flag in ("-h", "--help"):
        code, out, err = _run(capsys, *_in(lang, how, monkeypatch), command, flag)
        assert code == 0 and err == "", (code, err)
        assert out.startswith(f"{says['usage']}kit {command} [-h]"), out[:200]
        assert says["options"] in out and says["help"] in out, out


def test_help_flags_are_found_anywhere_and_win(capsys):
    code, out, _err = _run(capsys, "estimate", "c.yaml", "lora_rank=8", "--help")
    assert code == 0 and out.startswith("usage: kit estimate")


def test_a_command_called_directly_exits_as_argparse_does(capsys):
    """doctor_main and its kind are also called on their own (python -m kit.doctor): a SystemExit, as argparse's."""
    from kit.doctor import doctor_main

    with pytest.raises(SystemExit) as exc:
        doctor_main(["--help"])
    assert exc.value.code == 0 and isinstance(exc.value, UsageExit)
    with pytest.raises(SystemExit) as exc:
        doctor_main(["--device", "tpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "error: argument --device: invalid choice: 'tpu' (choose from 'auto', 'npu', 'cuda', 'cpu')"


# ---------------------------------------------------------------- mistakes

@pytest.mark.parametrize("lang, how", [("en", "locale"), ("zh", "locale"), ("zh", "flag"), ("en", "flag")])
@pytest.mark.parametrize("command", sorted(UNKNOWN_FLAG))
def test_an_unknown_flag_is_the_usage_and_one_error_line(command, lang, how, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    if how == "flag":  # `kit --lang en` wins over a Chinese locale
        monkeypatch.setenv("LANG", "zh_CN.UTF-8" if lang == "en" else "en_US.UTF-8")
    says = SAYS[lang]
    args = UNKNOWN_FLAG[command]
    line = _one_mistake(*_run(capsys, *_in(lang, how, monkeypatch), command, *args), command, says)
    assert line == says["error"] + says["unknown"] + args[-1]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("lang, how", [("en", "locale"), ("zh", "locale"), ("zh", "flag")])
@pytest.mark.parametrize("command", sorted(MISSING))
def test_a_missing_argument_is_the_usage_and_one_error_line(command, lang, how, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    says = SAYS[lang]
    args, missing = MISSING[command]
    line = _one_mistake(*_run(capsys, *_in(lang, how, monkeypatch), command, *args), command, says)
    if missing.startswith("--"):  # a flag without its value: argparse's "argument %s: %s"
        expected = {"en": f"argument {missing}: ", "zh": f"参数 {missing}："}[lang] + says["one"]
    else:
        expected = says["required"] + missing
    assert line == says["error"] + expected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_argparse_type_and_choice_messages_are_translated(lang, capsys):
    i18n.set_language(lang)
    line = _one_mistake(*_run(capsys, "doctor", "--nproc", "two"), "doctor", SAYS[lang])
    assert line == {"en": "error: argument --nproc: invalid int value: 'two'",
                    "zh": "错误：参数 --nproc：无效的 int 值：'two'"}[lang]
    line = _one_mistake(*_run(capsys, "estimate", "c.yaml", "--step", "fly"), "estimate", SAYS[lang])
    assert line == {"en": "error: argument --step: invalid choice: 'fly' (choose from 'train', 'chat', 'vllm', 'export')",
                    "zh": "错误：参数 --step：无效的取值：'fly'（可选值：'train', 'chat', 'vllm', 'export'）"}[lang]


def test_the_kits_own_command_line_checks_read_the_same(capsys):
    """Checks argparse cannot make (a config file after its overrides, -p without a value) are said the same way."""
    line = _one_mistake(*_run(capsys, "train", "a=1", "c.yaml"), "train", SAYS["en"])
    assert line == "error: unexpected argument 'c.yaml'; give the config file first, then key=value or --key value"
    line = _one_mistake(*_run(capsys, "batch", "nb.ipynb", "-p", "x"), "batch", SAYS["en"])
    assert line == "error: -p x: give a value (-p NAME VALUE [VALUE ...])"
    for words in (["--replace_earlier_export=maybe"], ["--template", "qwen", "--replace_earlier_export", "maybe"]):
        line = _one_mistake(*_run(capsys, "export", *words), "export", SAYS["en"])
        assert line == "error: --replace_earlier_export: 'maybe' is not true or false", words
    # A bare flag is true only for a true/false key: `--output_dir $OUT` with OUT empty is not a folder named "True".
    line = _one_mistake(*_run(capsys, "train", "c.yaml", "--output_dir"), "train", SAYS["en"])
    assert line == "error: --output_dir needs a value (--output_dir VALUE); only a true/false key can be given alone"
    line = _one_mistake(*_run(capsys, "chat", "--template", "--do_sample"), "chat", SAYS["en"])
    assert line.startswith("error: --template needs a value")


def test_an_unknown_command_and_a_missing_language(capsys):
    code, out, err = _run(capsys, "nope")
    assert code == 2 and out == "" and err.startswith("usage: kit [--lang en|zh] <command>")
    assert err.rstrip("\n").split("\n")[-1] == "error: unknown command 'nope'"
    code, out, err = _run(capsys, "--lang", "zh", "nope")
    assert code == 2 and err.startswith("用法：kit") and err.rstrip("\n").split("\n")[-1] == "错误：未知命令 'nope'"
    i18n.set_language(None)
    code, out, err = _run(capsys, "keys", "--lang")
    assert code == 2 and err.splitlines() == ["usage: kit [--lang en|zh] <command> [args]", "error: --lang needs a language: en, zh"]


# ---------------------------------------------------------------- what each command reads

def test_llamafactory_flags_still_work_for_chat_and_export(monkeypatch, capsys, tmp_path):
    """The line LLaMA-Factory's quick start types: --model_name_or_path M --adapter_name_or_path A --template qwen ..."""
    import kit.chat.engine
    from kit.chat import export, terminal

    seen = {}

    class Engine:
        def __init__(self, config):
            seen["chat"] = config

        def close(self):
            pass

    monkeypatch.setattr(kit.chat.engine, "Engine", Engine)
    monkeypatch.setattr(terminal, "run_loop", lambda engine: 0)

    def export_model(cfg, replace_earlier_export=False):
        seen["export"], seen["replace"] = cfg, replace_earlier_export
        return tmp_path

    monkeypatch.setattr(export, "export_model", export_model)
    model, adapter = str(tmp_path / "M"), str(tmp_path / "A")
    flags = ["--model_name_or_path", model, "--adapter_name_or_path", adapter, "--template", "qwen", "--finetuning_type", "lora"]
    assert cli.main(["chat", *flags, "--do_sample", "false", "--max_new_tokens=7"]) == 0
    assert cli.main(["export", *flags, "--replace_earlier_export", "--export_dir", str(tmp_path / "out")]) == 0
    for cfg in (seen["chat"], seen["export"]):
        assert (cfg.model.model_name_or_path, cfg.model.adapter_name_or_path, cfg.data.template) == (model, adapter, "qwen")
    assert (seen["chat"].infer.do_sample, seen["chat"].infer.max_new_tokens) == (False, 7) and seen["replace"] is True


@pytest.mark.parametrize("args, expected", [
    (["c.yaml", "a=1", "--b", "2", "--c=3", "--flag"], ("c.yaml", ["a=1", "b=2", "c=3", "flag=true"], False)),
    (["c.yaml", "--json", "lora_rank=8"], ("c.yaml", ["lora_rank=8"], True)),
    (["lora_rank=8", "--json", "c.yaml"], None),  # the config file comes first
    (["--json", "c.yaml", "--lora_rank", "8", "--device", "910B"], ("c.yaml", ["lora_rank=8"], True)),
])
def test_config_arguments_and_the_commands_own_options_mix(args, expected, capsys):
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit estimate", config_required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device")
    if expected is None:
        with pytest.raises(UsageExit):
            parser.parse_args(args)
        assert "give the config file first" in capsys.readouterr().err
        return
    ns = parser.parse_args(args)
    assert (ns.config, ns.overrides, ns.json) == expected


def test_demo_takes_its_values_before_between_and_after_its_options():
    parser = CommandParser("kit demo", words_anywhere=True)
    parser.add_argument("overrides", nargs="*", default=[])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--run_dir")
    ns = parser.parse_args(["a=1", "--json", "b=2", "--run_dir", "d", "c=3"])
    assert (ns.overrides, ns.json, ns.run_dir) == (["a=1", "b=2", "c=3"], True, "d")


# ---------------------------------------------------------------- the language of argparse, and nothing else

def test_argparse_language_puts_back_what_it_changed(monkeypatch):
    monkeypatch.setenv("LANGUAGE", "fr:de")
    before = (gettext.textdomain(), gettext.bindtextdomain("argparse"))
    with argparse_language("zh"):
        assert gettext.gettext("the following arguments are required: %s") == "缺少以下必需的参数：%s"
        with argparse_language("en"):
            assert gettext.gettext("the following arguments are required: %s") == "the following arguments are required: %s"
        assert gettext.gettext("usage: ") == "用法："
    assert (gettext.textdomain(), gettext.bindtextdomain("argparse")) == before and os.environ["LANGUAGE"] == "fr:de"
    monkeypatch.delenv("LANGUAGE")
    with argparse_language("zh"):
        pass
    assert "LANGUAGE" not in os.environ


def test_argparse_catalog_has_the_same_words_as_the_kits():
    """The kit's catalogs and argparse's are one chain (kit.i18n loads every .mo): a shared msgid reads the same."""
    zh = gettext.translation("argparse", localedir=i18n.LOCALE_DIR, languages=["zh"])
    i18n.set_language("zh")
    for msgid in ("usage: ", "options", "positional arguments", "show this help message and exit"):
        assert zh.gettext(msgid) == i18n._(msgid) != msgid


# ---------------------------------------------------------------- a real process

def _kit(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in LANGUAGE_VARIABLES}
    return subprocess.run([sys.executable, "-m", "kit.cli", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_in_a_chinese_locale_argparse_speaks_chinese(tmp_path):
    done = _kit("demo", "--no-such-flag", env={"LANG": "zh_CN.UTF-8", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["用法：kit demo [-h] [--run_dir DIR] [--lang {en,zh}] [--json] [key=value ...]",
                                        "错误：无法识别的参数：--no-such-flag"]


@pytest.mark.parametrize("args", [["--help"], ["doctor", "--help"], ["keys"]])
def test_a_reader_that_stops_early_is_not_a_crash(args):
    """`kit --help | head -1`: the reader goes away; no BrokenPipeError traceback, exit status 0."""
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"})
    proc.stdout.close()  # closed before kit writes a byte: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_chinese_option_help_wraps_at_the_terminals_columns(monkeypatch, capsys):
    """argparse wraps help with textwrap, which counts characters: a Chinese line came out twice the terminal's width."""
    from kit.command_parser import columns, wrap_columns

    assert wrap_columns("每个运行一张卡，通过 Notebook 的 visible_devices 设置", 20) == [
        "每个运行一张卡，通过", "Notebook 的", "visible_devices 设置"]
    assert wrap_columns("一二三四，五", 8) == ["一二三四，", "五"]  # closing punctuation stays on its line
    monkeypatch.setenv("COLUMNS", "80")
    i18n.set_language("zh")
    for command in ("estimate", "batch", "doctor"):
        code, out, _err = _run(capsys, command, "-h")
        options = out.split("\n选项:\n", 1)[1].splitlines()
        assert code == 0 and options and max(columns(line) for line in options if "kit batch 20_lora_sft" not in line) <= 80, out
