"""Datasets named in a ``dataset_info.json`` registry, read into role-tagged conversations.

The registry format, the alpaca and sharegpt column mappings and the rules for what counts as a
malformed example are LLaMA-Factory 0.9.5's, so ``dataset_dir`` can point at a LLaMA-Factory
checkout's ``data/`` folder. Without ``dataset_dir``, ``./data`` is read when it holds a
``dataset_info.json`` (as LLaMA-Factory does), else the kit's own demo data (``resolve_dataset_dir``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.data.errors import DataError, a_kind, shown
from kit.data.files import FILE_SUFFIXES, announce, locate, read_records
from kit.data.registry import DatasetAttr, check_columns, dataset_attr, read_registry
from kit.i18n import _

logger = logging.getLogger("kit.data")

DEMO_DIR = Path(__file__).parent / "demo"

__all__ = ["DEMO_DIR", "FILE_SUFFIXES", "DataError", "DatasetAttr", "Example", "LoadReport", "dataset_attr", "describe_dataset_dir",
           "load_examples", "read_records", "read_registry", "resolve_dataset_dir"]


@dataclass
class Example:
    """One conversation: ``prompt`` ends with a user turn, ``response`` holds the assistant's answer."""

    dataset: str
    index: int  # position in its dataset file
    prompt: list[dict[str, str]]
    response: list[dict[str, str]]
    system: str | None = None
    problem: str | None = None  # why it is malformed, None when fine


@dataclass
class LoadReport:
    per_dataset: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


# LLaMA-Factory's default dataset_dir: "data", relative to the folder the command runs in.
LLAMAFACTORY_DATA = "data"


def resolve_dataset_dir(dataset_dir: str | None, config_dir: Path | None = None, cwd: Path | None = None) -> Path:
    """The folder the datasets are read from, as LLaMA-Factory 0.9.5 finds it, with the kit's data as the fallback.

    - ``dataset_dir`` given: that folder (relative to the working directory, else to the YAML's folder);
    - not given, and ``./data/dataset_info.json`` exists in the working directory (``cwd``): that
      folder, as LLaMA-Factory reads it (its default ``dataset_dir`` is ``data``), so the quick
      start run from a LLaMA-Factory checkout trains on that checkout's ``data/``;
    - otherwise: the kit's own demo data (``kit/data/demo``), so the quick start runs anywhere.
    """
    if dataset_dir is None:
        local = (Path.cwd() if cwd is None else cwd) / LLAMAFACTORY_DATA
        if (local / "dataset_info.json").is_file():
            return local.resolve()
        return DEMO_DIR
    p = Path(dataset_dir).expanduser()
    if not p.is_absolute() and not p.exists() and config_dir is not None and (config_dir / p).exists():
        p = config_dir / p
    if not p.is_dir():
        raise DataError(_("dataset_dir: {dataset_dir!r} is not a directory; point it at a folder holding dataset_info.json "
                          "(e.g. LLaMA-Factory's data/), or leave it out to use the kit's demo data").format(dataset_dir=dataset_dir))
    return p


def describe_dataset_dir(dataset_dir: str | None, resolved: Path) -> str:
    """Why ``resolved`` was read, in a few words a person understands (for the run's data line)."""
    if dataset_dir is not None:
        return f"dataset_dir: {dataset_dir}"
    if resolved == DEMO_DIR:
        return _("the kit's own demo data: no dataset_dir, and no ./data/dataset_info.json in the working directory")
    return _("./data of the working directory, as LLaMA-Factory reads it when dataset_dir is not set")


# kit.tutorial.lessons reads a dataset's first rows with this name.
read_records = read_records


def _fill(record: Any, fills: dict[str, str]) -> Any:
    """``record`` with every ``{{key}}`` in its text replaced by ``fills[key]``, however deeply it nests.

    Walked with a list, not recursion: a record nested close to the JSON parser's limit reads fine
    and must not then fail here with RecursionError.
    """
    def fill_text(text: str) -> str:
        for key, value in fills.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    top: dict[str, Any] = {}
    todo: list[tuple[Any, Any, Any]] = [(record, top, "record")]  # (value, container to put its copy in, key there)
    while todo:
        value, into, key = todo.pop()
        if isinstance(value, str):
            into[key] = fill_text(value)
        elif isinstance(value, list):
            into[key] = copy = [None] * len(value)
            todo.extend((v, copy, i) for i, v in enumerate(value))
        elif isinstance(value, dict):
            into[key] = copy = dict.fromkeys(value)  # keys in their order; values filled in below
            todo.extend((v, copy, k) for k, v in value.items())
        else:
            into[key] = value
    return top["record"]


def _not_text(value: Any, what: str) -> str | None:
    """Why ``value`` cannot be used where text is expected (None: it can; a missing value counts as empty)."""
    if value is None or isinstance(value, str):
        return None
    return _("{what} is {a_kind}, expected text").format(what=what, a_kind=a_kind(value))


def _convert_alpaca(attr: DatasetAttr, record: dict[str, Any]) -> tuple[list, list, str | None, str | None]:
    # Text columns must hold text: a number or a list there would otherwise reach the template.
    for col in (attr.prompt, attr.query, attr.response, attr.system):
        problem = _not_text(record.get(col), _("column {column!r}").format(column=col)) if col else None
        if problem:
            return [], [], None, problem
    prompt: list[dict[str, str]] = []
    history = record.get(attr.history) if attr.history else None
    if history is not None and not isinstance(history, list):
        return [], [], None, _("column {column!r} is {a_kind}, expected a list of [prompt, response] pairs").format(
            column=attr.history, a_kind=a_kind(history))
    for n, turn in enumerate(history or []):
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2):
            return [], [], None, _("history entry {entry} is not a [prompt, response] pair").format(entry=shown(turn))
        for text in turn:
            problem = _not_text(text, _("column {column!r} entry {index}: {value}").format(column=attr.history, index=n, value=shown(text)))
            if problem:
                return [], [], None, problem
        prompt.append({"role": "user", "content": turn[0] or ""})
        prompt.append({"role": "assistant", "content": turn[1] or ""})
    query = []
    if attr.prompt and record.get(attr.prompt):
        query.append(record[attr.prompt])
    if attr.query and record.get(attr.query):
        query.append(record[attr.query])
    prompt.append({"role": "user", "content": "\n".join(query)})
    response_text = record.get(attr.response) if attr.response else None
    response = [{"role": "assistant", "content": response_text}] if isinstance(response_text, str) else []
    system = record.get(attr.system) if attr.system else None
    problem = None if response else _("no {column!r} text to train on").format(column=attr.response)
    return prompt, response, system, problem


def _convert_sharegpt(attr: DatasetAttr, record: dict[str, Any]) -> tuple[list, list, str | None, str | None]:
    tag_roles = {attr.user_tag: "user", attr.assistant_tag: "assistant", attr.observation_tag: "observation",
                 attr.function_tag: "function", attr.system_tag: "system"}
    odd, even = (attr.user_tag, attr.observation_tag), (attr.assistant_tag, attr.function_tag)
    messages = record.get(attr.messages)
    if not isinstance(messages, list):
        return [], [], None, _("column {column!r} is not a list of messages").format(column=attr.messages)
    for col in (attr.system, attr.tools):
        problem = _not_text(record.get(col), _("column {column!r}").format(column=col)) if col else None
        if problem:
            return [], [], None, problem
    for turn, message in enumerate(messages):
        if isinstance(message, dict):
            where = _("column {column!r} message {index} {tag!r}")
            problem = (_not_text(message.get(attr.role_tag), where.format(column=attr.messages, index=turn, tag=attr.role_tag))
                       or _not_text(message.get(attr.content_tag), where.format(column=attr.messages, index=turn, tag=attr.content_tag)))
            if problem:
                return [], [], None, problem
    if messages and isinstance(messages[0], dict) and messages[0].get(attr.role_tag) == attr.system_tag:
        system = messages[0].get(attr.content_tag)
        messages = messages[1:]
    else:
        system = record.get(attr.system) if attr.system else None
    aligned: list[dict[str, str]] = []
    for turn, message in enumerate(messages):
        if not isinstance(message, dict) or message.get(attr.role_tag) not in (odd, even)[turn % 2]:
            role = message.get(attr.role_tag) if isinstance(message, dict) else message
            problem = _("message {index} has role {role} where {expected} was expected").format(
                index=turn, role=shown(role), expected=_(" or ").join((odd, even)[turn % 2]))
            if role is None and isinstance(message, dict) and {"role", "content"} <= message.keys() and attr.role_tag != "role":
                # OpenAI's layout, which LLaMA-Factory reads as sharegpt once the entry's tags say so
                problem += _("; its messages use OpenAI's role/content: add to the dataset's entry in dataset_info.json "
                             '"tags": {{"role_tag": "role", "content_tag": "content", "user_tag": "user", '
                             '"assistant_tag": "assistant", "system_tag": "system"}}').format()
            return [], [], None, problem
        if tag_roles[message[attr.role_tag]] == "function":
            return [], [], None, _("function calls are not supported by the kit")
        aligned.append({"role": tag_roles[message[attr.role_tag]], "content": message.get(attr.content_tag) or ""})
    if len(aligned) % 2 != 0 or not aligned:
        return [], [], None, _("{count} messages: a conversation needs user/assistant pairs ending with the assistant").format(
            count=len(aligned))
    return aligned[:-1], aligned[-1:], system, None


def load_examples(names: list[str], dataset_dir: Path, max_samples: int | None = None,
                  fills: dict[str, str] | None = None) -> tuple[list[Example], LoadReport]:
    """Read every named dataset in order; malformed examples come back with ``problem`` set."""
    registry = read_registry(dataset_dir)
    attrs = [dataset_attr(n, registry, dataset_dir) for n in names]  # fail fast on any unknown name
    examples: list[Example] = []
    report = LoadReport()
    for attr in attrs:
        found = locate(attr.name, attr.file_name, dataset_dir)
        announce(found, dataset_dir)
        path = found.path
        records = [r for f in found.files for r in read_records(f, attr.name)]
        # The columns a dataset has are those of all its examples (as `datasets` infers them), before max_samples.
        seen_columns = set().union(*(r.keys() for r in records)) if records else set()
        mapped = attr.mapped_columns()
        if records and not seen_columns & set(mapped):
            raise DataError(_("dataset {name!r}: {path} has columns {columns} but none of the mapped {formatting} columns "
                              "{mapped}; fix 'columns' in dataset_info.json").format(
                name=attr.name, path=path, columns=sorted(seen_columns), formatting=attr.formatting, mapped=mapped))
        if records:
            check_columns(attr, path, seen_columns)
        if max_samples is not None:
            records = records[:max_samples]  # LLaMA-Factory truncates each dataset before conversion
        convert = _convert_alpaca if attr.formatting == "alpaca" else _convert_sharegpt
        do_fill = bool(fills) and "identity" in attr.name
        bad = 0
        for i, record in enumerate(records):
            if do_fill:
                record = _fill(record, fills)
            prompt, response, system, problem = convert(attr, record)
            if problem:
                bad += 1
                report.dropped.append(f"{attr.name}[{i}]: {problem}")
            examples.append(Example(attr.name, i, prompt, response, system, problem))
        counts = report.per_dataset.setdefault(attr.name, {"read": 0, "malformed": 0})  # a name given twice adds up
        counts["read"] += len(records)
        counts["malformed"] += bad
    return examples, report
