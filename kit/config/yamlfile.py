"""Reading a person's YAML config file, with the limits a parser needs to be safe on any input.

PyYAML's ``safe_load`` is safe from code execution, not from everything else: a repeated key keeps the
last value without a word (LLaMA-Factory's reader, OmegaConf, refuses it), aliases can expand a few
lines into billions of values (the "billion laughs" file) once something walks them, deep nesting
ends in a RecursionError, and a device or FIFO named as the config is read forever. Each of these is
one message here, naming the file and, where there is one, the line.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from kit.i18n import _

# A LLaMA-Factory config is a few KB; a megabyte is already thousands of keys.
MAX_BYTES = 1 << 20
# Values a config can hold once aliases are expanded (a key with a list of dataset names is a few dozen).
MAX_EXPANDED_NODES = 10_000
MAX_DEPTH = 32


# Characters a Chinese input method or a web page puts where YAML needs plain ASCII ones, and invisible ones a
# copy and paste brings: PyYAML reports them as a missing ':' somewhere else (often the line after).
LOOKALIKES = {"\uff1a": ":", "\uff0c": ",", "\u3000": " ", "\u00a0": " ", "\uff03": "#", "\uff3b": "[", "\uff3d": "]",
              "\uff5b": "{", "\uff5d": "}", "\uff0d": "-", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
              "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": ""}


def describe_char(char: str) -> str:
    """'：' (U+FF1A) for a visible character, U+200B (invisible) for one a person cannot see."""
    if LOOKALIKES.get(char) == "":
        return _("an invisible character U+{code:04X}").format(code=ord(char))
    return f"'{char}' (U+{ord(char):04X})"


def lookalike_in(text: str) -> tuple[int, str] | None:
    """The first (line number, character) of LOOKALIKES outside a comment; a leading byte-order mark is allowed."""
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        code = line.split("#", 1)[0]
        for char in code:
            if char in LOOKALIKES:
                return number, char
    return None


def lookalike_hint(text: str) -> str:
    """"; line N holds '：' ..." for a YAML error's message, or nothing."""
    found = lookalike_in(text)
    if found is None:
        return ""
    line, char = found
    plain = LOOKALIKES[char]
    if plain:
        return _("; line {line} holds {char} where YAML needs the plain {plain!r} (a full-width or look-alike character, "
                 "often from an input method): retype it").format(line=line, char=describe_char(char), plain=plain)
    return _("; line {line} holds {char} (from a copy and paste): delete it").format(line=line, char=describe_char(char))


class YamlFileError(ValueError):
    """One problem with a YAML file, already worded for a person (the caller adds its own context)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key (a list): SafeLoader's own message says so
            break
        if first is not None:
            raise YamlFileError(_("key {key} appears twice, on line {first} and line {second}; keep one").format(
                key=repr(key), first=first, second=key_node.start_mark.line + 1))
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_size(root: yaml.Node) -> None:
    """Refuse aliases that expand beyond MAX_EXPANDED_NODES values, nesting deeper than MAX_DEPTH, and
    an alias that contains itself. Each node's expanded size is computed once (memoised), so even a
    file that would expand to 10^30 values is measured in time linear in its size."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise YamlFileError(_("values nested more than {limit} levels deep (line {line}); a config holds flat "
                                  "key: value lines").format(limit=MAX_DEPTH, line=node.start_mark.line + 1))
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise YamlFileError(_("an alias on line {line} refers to itself").format(line=node.start_mark.line + 1))
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        on_path.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise YamlFileError(_("the value on line {line} expands to more than {limit} values (through aliases "
                                  "such as *name); a config holds flat key: value lines").format(
                line=node.start_mark.line + 1, limit=MAX_EXPANDED_NODES))
        return total

    size(root, 0)


def load(path: Path) -> Any:
    """The YAML document in ``path`` (None when empty); YamlFileError for anything a config cannot be.

    The path must exist and be a regular file (callers check existence first for their own wording).
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise YamlFileError(_("it is not a regular file (a device, a pipe or a socket); give a YAML file"))
    if info.st_size > MAX_BYTES:
        raise YamlFileError(_("it is {size:.1f} MB; a config file is a few KB (at most {limit} MB is read)").format(
            size=info.st_size / 1e6, limit=MAX_BYTES // (1 << 20)))
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlFileError(_("it is UTF-16 text, not UTF-8; save it as UTF-8 (in most editors: Save As, encoding UTF-8) "
                              "and run again"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(_("it is not UTF-8 text (byte {byte}, line {line}: {value!r}); save it as UTF-8 (e.g. iconv -f "
                              "GBK -t UTF-8 in.yaml > out.yaml for a GBK file) and run again").format(
            byte=exc.start, line=raw[:exc.start].count(b"\n") + 1, value=raw[exc.start:exc.start + 1])) from None
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_size(root)
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        exc.kit_hint = lookalike_hint(text)  # type: ignore[attr-defined]  # read by the caller's message
        raise
    except RecursionError:
        raise YamlFileError(_("values nested too deeply for the parser; a config holds flat key: value lines")) from None
    finally:
        loader.dispose()
