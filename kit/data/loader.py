"""Datasets named in a ``dataset_info.json`` registry, read into role-tagged conversations.

The registry format, the alpaca and sharegpt column mappings and the rules for what counts as a
malformed example are LLaMA-Factory 0.9.5's, so ``dataset_dir`` can point at a LLaMA-Factory
checkout's ``data/`` folder. Without ``dataset_dir``, ``./data`` is read when it holds a
``dataset_info.json`` (as LLaMA-Factory does), else the kit's own demo data (``resolve_dataset_dir``).
"""

from __future__ import annotations

import codecs
import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError
from kit.i18n import _

logger = logging.getLogger("kit.data")

DEMO_DIR = Path(__file__).parent / "demo"
FILE_SUFFIXES = (".json", ".jsonl")


class DataError(KitError, ValueError):
    pass


@dataclass(frozen=True)
class DatasetAttr:
    name: str
    file_name: str
    formatting: str = "alpaca"
    # alpaca columns
    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    # shared / sharegpt columns
    messages: str | None = "conversations"
    system: str | None = None
    tools: str | None = None
    # sharegpt tags
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"

    def mapped_columns(self) -> list[str]:
        if self.formatting == "alpaca":
            cols = [self.prompt, self.query, self.response, self.history, self.system]
        else:
            cols = [self.messages, self.system, self.tools]
        return [c for c in cols if c]


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


def _read_text(path: Path, what: str) -> str:
    """The text of a UTF-8 file; a byte-order mark (which Windows editors write) is dropped, as JSON wants."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(_("{what}: {path} is UTF-16 text, not UTF-8; save it as UTF-8 (in most editors: Save As, "
                          "encoding UTF-8) and run again").format(what=what, path=path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(_("{what}: {path} is not UTF-8 text (byte {byte}, line {line}: {value!r}); save it as UTF-8 "
                          "(e.g. iconv -f GBK -t UTF-8 in.json > out.json for a GBK file) and run again").format(
                            what=what, path=path, byte=exc.start, line=line, value=raw[exc.start:exc.start + 1])) from None


def read_registry(dataset_dir: Path) -> dict[str, Any]:
    info = dataset_dir / "dataset_info.json"
    if not info.is_file():
        raise DataError(_("dataset_dir: {dataset_dir!r} has no dataset_info.json").format(dataset_dir=str(dataset_dir)))
    text = _read_text(info, "dataset_dir")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(_("{path}: not valid JSON ({error})").format(path=info, error=exc)) from None
    if not isinstance(data, dict):
        raise DataError(_("{path}: must hold a JSON object mapping dataset names to their description").format(path=info))
    return data


def dataset_attr(name: str, registry: dict[str, Any], dataset_dir: Path) -> DatasetAttr:
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = _("; did you mean {name}?").format(name=close[0]) if close else ""
        raise DataError(_("dataset: {name!r} is not in {registry}{hint} (it has: {names})").format(
            name=name, registry=dataset_dir / "dataset_info.json", hint=hint,
            names=", ".join(sorted(registry)[:20]) + (" ..." if len(registry) > 20 else "")))
    entry = registry[name]
    if not isinstance(entry, dict):
        raise DataError(_("dataset_info.json: entry {name!r} must be an object").format(name=name))
    if "file_name" not in entry:
        hub = entry.get("hf_hub_url") or entry.get("ms_hub_url") or entry.get("script_url")
        raise DataError(_("dataset: {name!r} is a hub dataset ({hub}); the kit reads local files only. "
                          "Download it, save it as JSON or JSONL, and register it with file_name").format(name=name, hub=hub))
    if entry.get("ranking") or (entry.get("columns") or {}).get("kto_tag"):
        raise DataError(_("dataset: {name!r} is a preference dataset; the kit trains supervised fine-tuning (sft) only").format(name=name))
    formatting = entry.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt"):
        raise DataError(_("dataset_info.json: {name!r} has formatting {formatting!r}; use alpaca or sharegpt").format(
            name=name, formatting=formatting))
    kwargs: dict[str, Any] = {"name": name, "file_name": entry["file_name"], "formatting": formatting}
    columns = entry.get("columns") or {}
    tags = entry.get("tags") or {}
    allowed_cols = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos", "audios"}
    for key, value in columns.items():
        if key not in allowed_cols:
            raise DataError(_("dataset_info.json: {name!r} maps unknown column role {key!r} (known: {known})").format(
                name=name, key=key, known=", ".join(sorted(allowed_cols))))
        if key in ("images", "videos", "audios"):
            raise DataError(_("dataset: {name!r} has {key}; multimodal data is not supported by the kit").format(name=name, key=key))
        kwargs[key] = value
    for key, value in tags.items():
        if key not in DatasetAttr.__dataclass_fields__ or not key.endswith("_tag"):
            raise DataError(_("dataset_info.json: {name!r} has unknown tag {key!r}").format(name=name, key=key))
        kwargs[key] = value
    return DatasetAttr(**kwargs)


def _read_records(path: Path, name: str) -> list[dict[str, Any]]:
    files = sorted(p for p in path.iterdir() if p.suffix in FILE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DataError(_("dataset {name!r}: folder {path} has no .json or .jsonl files").format(name=name, path=path))
    records: list[dict[str, Any]] = []
    for f in files:
        if f.suffix not in FILE_SUFFIXES:
            raise DataError(_("dataset {name!r}: {path} is not a .json or .jsonl file (the kit reads JSON and JSONL)").format(
                name=name, path=f))
        text = _read_text(f, _("dataset {name!r}").format(name=name))
        if f.suffix == ".jsonl":
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(_("dataset {name!r}: {path} line {line} is not valid JSON ({error})").format(
                        name=name, path=f, line=lineno, error=exc.msg)) from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                # LLaMA-Factory (through `datasets`) also accepts JSON Lines in a .json file.
                try:
                    data = [json.loads(line) for line in text.splitlines() if line.strip()]
                except json.JSONDecodeError:
                    raise DataError(_("dataset {name!r}: {path} is not valid JSON (line {line}, column {column}: {error})").format(
                        name=name, path=f, line=exc.lineno, column=exc.colno, error=exc.msg)) from None
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list):
                raise DataError(_("dataset {name!r}: {path} must hold a list of examples").format(name=name, path=f))
            records.extend(data)
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise DataError(_("dataset {name!r}: example {index} is a {kind}, not an object with columns").format(
                name=name, index=i, kind=type(r).__name__))
    return records


def _fill(text: Any, fills: dict[str, str]) -> Any:
    if isinstance(text, str):
        for key, value in fills.items():
            text = text.replace("{{" + key + "}}", value)
        return text
    if isinstance(text, list):
        return [_fill(t, fills) for t in text]
    if isinstance(text, dict):
        return {k: _fill(v, fills) for k, v in text.items()}
    return text


def _a(value: Any) -> str:
    """'an int', 'a list': what a value is, in the words of a message (Chinese has no article: "int 类型")."""
    kind = type(value).__name__
    return (_("an {kind}") if kind[0] in "aeiou" else _("a {kind}")).format(kind=kind)


def _not_text(value: Any, what: str) -> str | None:
    """Why ``value`` cannot be used where text is expected (None: it can; a missing value counts as empty)."""
    if value is None or isinstance(value, str):
        return None
    return _("{what} is {a_kind}, expected text").format(what=what, a_kind=_a(value))


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
            column=attr.history, a_kind=_a(history))
    for n, turn in enumerate(history or []):
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2):
            return [], [], None, _("history entry {entry!r} is not a [prompt, response] pair").format(entry=turn)
        for text in turn:
            problem = _not_text(text, _("column {column!r} entry {index}: {value!r}").format(column=attr.history, index=n, value=text))
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
            return [], [], None, _("message {index} has role {role!r} where {expected} was expected").format(
                index=turn, role=role, expected=_(" or ").join((odd, even)[turn % 2]))
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
        path = dataset_dir / attr.file_name
        if not path.exists():
            raise DataError(_("dataset {name!r}: file {path} does not exist (file_name in {registry})").format(
                name=attr.name, path=path, registry=dataset_dir / "dataset_info.json"))
        records = _read_records(path, attr.name)
        if max_samples is not None:
            records = records[:max_samples]  # LLaMA-Factory truncates each dataset before conversion
        seen_columns = set().union(*(r.keys() for r in records)) if records else set()
        mapped = attr.mapped_columns()
        if records and not seen_columns & set(mapped):
            raise DataError(_("dataset {name!r}: {path} has columns {columns} but none of the mapped {formatting} columns "
                              "{mapped}; fix 'columns' in dataset_info.json").format(
                name=attr.name, path=path, columns=sorted(seen_columns), formatting=attr.formatting, mapped=mapped))
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
        report.per_dataset[attr.name] = {"read": len(records), "malformed": bad}
    return examples, report
