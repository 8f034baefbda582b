"""The dataset registry, ``dataset_info.json``: each entry checked key by key into a ``DatasetAttr``.

The keys and their meaning are LLaMA-Factory 0.9.5's. A value of the wrong type (a ``columns``
that is a list, a ``formatting`` that is a number, a ``ranking`` written as the string "false")
is one DataError naming the registry, the dataset and the key: never a traceback, and never a
value quietly taken for something else.

As in LLaMA-Factory, an entry with ``columns`` maps exactly the roles it names: a role it leaves
out is not read from the data (without ``columns``, the alpaca defaults instruction / input /
output, and sharegpt's conversations, are used). ``check_columns`` then holds the mapping against
the data file: a mapped column that no example has is an error, as LLaMA-Factory raises one,
instead of training on empty prompts.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from kit.data.errors import DataError, a_kind, shown
from kit.data.files import parse_json, read_bytes, decode
from kit.i18n import _

COLUMN_ROLES = ("prompt", "query", "response", "history", "messages", "system", "tools")
MEDIA_ROLES = ("images", "videos", "audios")
PREFERENCE_ROLES = ("chosen", "rejected", "kto_tag")


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
    # the roles dataset_info.json maps by name (its "columns"); () when it has none and defaults apply
    named_columns: tuple[str, ...] = ()

    def mapped_columns(self) -> list[str]:
        if self.formatting == "alpaca":
            cols = [self.prompt, self.query, self.response, self.history, self.system]
        else:
            cols = [self.messages, self.system, self.tools]
        return [c for c in cols if c]

    def required_columns(self) -> dict[str, str]:
        """role -> column that the data must have: every role ``columns`` names, else the format's defaults.

        Without ``columns`` the alpaca ``input`` column may be absent (a file of instruction and output
        only is common); the instruction and output columns must be there.
        """
        if self.named_columns:
            return {role: getattr(self, role) for role in self.named_columns if getattr(self, role)}
        if self.formatting == "alpaca":
            return {"prompt": self.prompt, "response": self.response}
        return {"messages": self.messages}


TAGS = tuple(f.name for f in fields(DatasetAttr) if f.name.endswith("_tag"))


def read_registry(dataset_dir: Path) -> dict[str, Any]:
    info = dataset_dir / "dataset_info.json"
    if not info.exists():
        raise DataError(_("dataset_dir: {dataset_dir!r} has no dataset_info.json").format(dataset_dir=str(dataset_dir)))
    what = "dataset_dir"
    data = parse_json(decode(read_bytes(what, info), info, what), info, what)
    if not isinstance(data, dict):
        raise DataError(_("{path}: must hold a JSON object mapping dataset names to their description").format(path=info))
    return data


def _wrong(registry: Path, name: str, key: str, value: Any, expected: str) -> DataError:
    return DataError(_("{registry}: dataset {name!r}: {key} is {a_kind} ({value}); it must be {expected}").format(
        registry=registry, name=name, key=key, a_kind=a_kind(value), value=shown(value), expected=expected))


def _text_map(registry: Path, name: str, key: str, value: Any) -> dict[str, str | None]:
    """``columns`` or ``tags``: an object whose values are names (text), or null for "not mapped"."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong(registry, name, key, value, _("an object such as {example}").format(
            example='{"prompt": "instruction", "response": "output"}' if key == "columns" else '{"role_tag": "role"}'))
    for k, v in value.items():
        if v is not None and not isinstance(v, str):
            raise _wrong(registry, name, f"{key}.{k}", v, _("text: the name of a key in the data file"))
    return value


def dataset_attr(name: str, registry: dict[str, Any], dataset_dir: Path) -> DatasetAttr:
    where = dataset_dir / "dataset_info.json"
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = _("; did you mean {name}?").format(name=close[0]) if close else ""
        raise DataError(_("dataset: {name!r} is not in {registry}{hint} (it has: {names})").format(
            name=name, registry=where, hint=hint,
            names=", ".join(sorted(registry)[:20]) + (" ..." if len(registry) > 20 else "")))
    entry = registry[name]
    if not isinstance(entry, dict):
        raise DataError(_("{registry}: dataset {name!r} is {a_kind} ({value}); it must be an object such as "
                          "{example}").format(registry=where, name=name, a_kind=a_kind(entry), value=shown(entry),
                                              example='{"file_name": "data.json"}'))
    columns = _text_map(where, name, "columns", entry.get("columns"))
    tags = _text_map(where, name, "tags", entry.get("tags"))
    ranking = entry.get("ranking", False)
    if not isinstance(ranking, bool):
        # "false" as a string is true to Python (and to LLaMA-Factory): say so rather than guess.
        raise _wrong(where, name, "ranking", ranking, _("true or false (without quotes)"))
    if "file_name" not in entry:
        hub = entry.get("hf_hub_url") or entry.get("ms_hub_url") or entry.get("script_url")
        raise DataError(_("dataset: {name!r} is a hub dataset ({hub}); the kit reads local files only. "
                          "Download it, save it as JSON or JSONL, and register it with file_name").format(name=name, hub=shown(hub)))
    file_name = entry["file_name"]
    if not isinstance(file_name, str) or not file_name:
        raise _wrong(where, name, "file_name", file_name, _("the name of a .json or .jsonl file in {folder}").format(folder=dataset_dir))
    if ranking or columns.get("kto_tag"):
        raise DataError(_("dataset: {name!r} is a preference dataset; the kit trains supervised fine-tuning (sft) only").format(name=name))
    formatting = entry.get("formatting", "alpaca")
    if not isinstance(formatting, str):
        raise _wrong(where, name, "formatting", formatting, _("alpaca or sharegpt"))
    if formatting not in ("alpaca", "sharegpt"):
        raise DataError(_("dataset_info.json: {name!r} has formatting {formatting!r}; use alpaca or sharegpt").format(
            name=name, formatting=formatting))
    kwargs: dict[str, Any] = {"name": name, "file_name": file_name, "formatting": formatting}
    if "columns" in entry and entry["columns"] is not None:
        # LLaMA-Factory: with "columns", each role is what it names, and a role it does not name is unset.
        kwargs.update({role: None for role in COLUMN_ROLES if role != "messages"})
        kwargs["messages"] = None if formatting == "sharegpt" else DatasetAttr.messages
    known = COLUMN_ROLES + MEDIA_ROLES + PREFERENCE_ROLES
    for key, value in columns.items():
        if key not in known:
            raise DataError(_("dataset_info.json: {name!r} maps unknown column role {key!r} (known: {known})").format(
                name=name, key=key, known=", ".join(sorted(COLUMN_ROLES + MEDIA_ROLES))))
        if key in MEDIA_ROLES and value:
            raise DataError(_("dataset: {name!r} has {key}; multimodal data is not supported by the kit").format(name=name, key=key))
        if key in COLUMN_ROLES:
            kwargs[key] = value
    kwargs["named_columns"] = tuple(k for k, v in columns.items() if k in COLUMN_ROLES and v)
    if formatting == "alpaca" and kwargs.get("response", DatasetAttr.response) is None:
        raise DataError(_("{registry}: dataset {name!r}: columns names no response column, so there is nothing to train on; "
                          "add \"response\": \"output\" (the name of the answer column in the data)").format(registry=where, name=name))
    if formatting == "sharegpt" and kwargs.get("messages", DatasetAttr.messages) is None:
        raise DataError(_("{registry}: dataset {name!r}: columns names no messages column for sharegpt data; "
                          "add \"messages\": \"conversations\" (the name of the list of messages in the data)").format(
            registry=where, name=name))
    for key, value in tags.items():
        if key not in TAGS:
            raise DataError(_("dataset_info.json: {name!r} has unknown tag {key!r}").format(name=name, key=key))
        if value is not None:
            kwargs[key] = value
    return DatasetAttr(**kwargs)


def check_columns(attr: DatasetAttr, path: Path, seen: set[str]) -> None:
    """Every column the registry maps (or the format needs) is in the data: else name it and what there is."""
    missing = {role: col for role, col in attr.required_columns().items() if col not in seen}
    if not missing:
        return
    role, column = next(iter(missing.items()))
    columns = ", ".join(sorted(seen)) or _("none")
    if attr.named_columns:
        raise DataError(_("dataset {name!r}: dataset_info.json maps {role} to column {column!r}, but no example in {path} "
                          "has it (its columns: {columns}); fix 'columns' in dataset_info.json or the data file").format(
            name=attr.name, role=role, column=column, path=path, columns=columns))
    raise DataError(_("dataset {name!r}: without 'columns' in dataset_info.json, {formatting} data is read from column "
                      "{column!r} (for {role}), but no example in {path} has it (its columns: {columns}); name the "
                      "file's columns in 'columns' (see LLaMA-Factory's data/README.md)").format(
        name=attr.name, formatting=attr.formatting, column=column, role=role, path=path, columns=columns))
