"""Keep the gettext catalogs in step with the code: extract, update, compile (with Babel).

    python scripts/i18n.py [AREA ...]  # extract every _()/N_() message, add new ones to the areas' .po (all by default), compile .mo
    python scripts/i18n.py --check     # exit 1 when a message has no Chinese text, a .mo is stale, or a module
                                       # with messages belongs to no area (its messages would go untranslated)

Each area of the package has its own catalog, kit/locale/zh/LC_MESSAGES/<area>.po; a translator
edits those (any .po editor works) and runs this script to compile them. tests/test_i18n.py runs the
check.

One catalog is not the kit's: ``argparse`` holds argparse's own messages ("usage: ", "the following
arguments are required: %s" ...), msgids exactly as the standard library's argparse writes them, which
``kit.command_parser.argparse_language`` installs while a kit command parses its command line.
They are extracted from the argparse of the Python that runs this script; an update adds a newer
Python's messages and keeps the older ones (each Python looks up those it has).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from datetime import datetime, timezone

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "kit"
LOCALE = KIT / "locale"
TRANSLATED = ("zh",)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
# Fixed header dates: the catalogs change only when a message does (reviewable diffs, reproducible .mo files).
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def new_catalog(area: str, lang: str | None = None) -> Catalog:
    return Catalog(locale=lang, project="kit", version="0.1", domain=area, creation_date=EPOCH, revision_date=EPOCH,
                   copyright_holder="the kit authors", last_translator="the kit authors", language_team=f"{lang or 'en'}",
                   fuzzy=False)

# Catalogs of another package's messages: area -> the module (an absolute path) whose msgids it holds.
FOREIGN: dict[str, Path] = {"argparse": Path(argparse.__file__).resolve()}

# area -> the sources whose messages its catalog holds (each source in exactly one area), under kit/ or absolute
AREAS: dict[str, tuple[str, ...]] = {
    "doctor": ("doctor",),
    "train": ("config", "run", "cli.py", "command_parser.py", "train.py", "ports.py", "envvars.py", "i18n.py", "errors.py",
              "library_text.py", "import_cache.py", "processes.py"),
    "data": ("data", "hub.py", "model.py", "device.py", "estimate", "fmt.py", "tiny.py"),
    "chat": ("chat",),
    "evaluate": ("evaluate",),
    "notebook": ("tutorial",),
    **{area: (str(module),) for area, module in FOREIGN.items()},
}


def location(path: Path) -> str:
    """Where a message is, as the .po file says it: relative to the checkout, or a foreign module's file name."""
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def sources(area: str) -> list[Path]:
    out: list[Path] = []
    for item in AREAS[area]:
        path = KIT / item
        out += sorted(path.rglob("*.py")) if path.is_dir() else ([path] if path.exists() else [])
    return out


def extract(area: str) -> Catalog:
    """Every message marked in the area's sources, with where it is."""
    catalog = new_catalog(area)
    for path in sources(area):
        for lineno, message, comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            # A foreign module's line numbers differ from one Python to the next: its file name only.
            catalog.add(message, locations=[(location(path), None if area in FOREIGN else lineno)], auto_comments=comments)
    return catalog


def unassigned() -> list[Path]:
    """Modules of the kit with messages that no area extracts: their messages would never be translated."""
    covered = {path.resolve() for area in AREAS for path in sources(area)}
    return [path for path in sorted(KIT.rglob("*.py")) if path.resolve() not in covered
            and any(True for _ in extract_from_file("python", str(path), keywords=KEYWORDS))]


def po_path(lang: str, area: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{area}.po"


def read(lang: str, area: str) -> Catalog:
    path = po_path(lang, area)
    if not path.is_file():
        return new_catalog(area, lang)
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=area)
    catalog.fuzzy = False
    return catalog


def untranslated(lang: str, area: str) -> list[str]:
    """msgids the code uses that the area's catalog has no (non-fuzzy) text for."""
    catalog = read(lang, area)
    missing = []
    for message in extract(area):
        if not message.id:
            continue
        found = catalog.get(message.id)
        strings = found.string if found is not None else None
        text = strings[0] if isinstance(strings, tuple) else strings
        if found is None or not text or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def compiled(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def update(lang: str, area: str) -> None:
    catalog = read(lang, area)
    catalog.update(extract(area), no_fuzzy_matching=True, update_creation_date=False)
    if area in FOREIGN:  # another Python's messages stay: that Python still looks them up
        for message in list(catalog.obsolete.values()):
            catalog[message.id] = message
        catalog.obsolete.clear()
    catalog.revision_date = EPOCH
    po = po_path(lang, area)
    po.parent.mkdir(parents=True, exist_ok=True)
    with po.open("wb") as fh:
        write_po(fh, catalog, width=120, omit_header=False, sort_output=False, ignore_obsolete=True)
    po.with_suffix(".mo").write_bytes(compiled(read(lang, area)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("areas", nargs="*", metavar="AREA", help=f"only these areas (default: all of {', '.join(AREAS)})")
    a = ap.parse_args()
    unknown = [x for x in a.areas if x not in AREAS]
    if unknown:
        ap.error(f"unknown area(s) {', '.join(unknown)}; known: {', '.join(AREAS)}")
    areas = a.areas or list(AREAS)
    problems = []
    for lang in TRANSLATED:
        for area in areas:
            if a.check:
                for msgid in untranslated(lang, area):
                    problems.append(f"{lang}/{area}.po: no translation for {msgid!r}")
                mo = po_path(lang, area).with_suffix(".mo")
                if po_path(lang, area).is_file() and (not mo.is_file() or mo.read_bytes() != compiled(read(lang, area))):
                    problems.append(f"{lang}/{area}.mo is stale: run python scripts/i18n.py")
            else:
                update(lang, area)
    if a.check and not a.areas:
        for path in unassigned():
            problems.append(f"{path.relative_to(ROOT)}: has messages but belongs to no area; add it to AREAS in {Path(__file__).name}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
