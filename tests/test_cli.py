"""The kit command: one argument parser, one message and exit 2 for a mistake, 128+N for a signal."""

from __future__ import annotations

import pytest

from kit import cli
from kit.config.command_line import split_config_args
from kit.config import ConfigError


@pytest.mark.parametrize("args, expected", [
    (["c.yaml", "a=1", "--b", "2", "--c=3", "--flag"], ("c.yaml", ["a=1", "b=2", "c=3", "flag=true"])),
    (["--model_name_or_path", "m", "--template", "qwen"], (None, ["model_name_or_path=m", "template=qwen"])),
    ([], (None, [])),
    (["--do_sample", "--top_k", "5"], (None, ["do_sample=true", "top_k=5"])),
])
def test_one_parser_for_both_spellings(args, expected):
    assert split_config_args(args) == expected


def test_stray_words_are_named():
    with pytest.raises(ConfigError, match="unexpected argument 'oops'"):
        split_config_args(["c.yaml", "a=1", "oops"])
    with pytest.raises(ConfigError, match="'--' is not a flag"):
        split_config_args(["--"])


def test_unknown_command_and_help(capsys):
    assert cli.main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main([]) == 0 and "commands:" in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0 and "torchrun --nproc_per_node" in capsys.readouterr().out


def test_environment_mistake_is_one_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("NNODES", "two")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: kit/tiny-qwen\ndataset: identity\ntemplate: qwen\noutput_dir: out\n")
    assert cli.main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "NNODES='two' is not an integer" in err and "Traceback" not in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "keys", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["keys"])


def test_a_signal_becomes_128_plus_its_number(monkeypatch, capsys):
    import signal

    from kit.run.launch import Terminated

    def terminated(args):
        raise Terminated(signal.SIGTERM)

    monkeypatch.setitem(cli.COMMANDS, "keys", terminated)
    assert cli.main(["keys"]) == 128 + signal.SIGTERM
    monkeypatch.setitem(cli.COMMANDS, "keys", lambda args: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert cli.main(["keys"]) == 130
