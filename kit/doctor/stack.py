"""The Ascend stack table (``ascend_stack.json``): torch_npu -> torch and CANN pairings, and which chips
compute in bf16. The table is data with its date and sources; code here only looks things up.

Sources (also in the JSON): Ascend/pytorch ``COMPATIBILITY.en.md`` (release 26.1.0) for the CANN pairing,
torch-npu's Requires-Dist on PyPI for the torch pin, Ascend/pytorch ``NpuVariables.cpp`` and LLaMA-Factory
issues #4339 / #7489 for bf16 (../shared/reference/ascend/FACTS.md collects them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

STACK_FILE = Path(__file__).with_name("ascend_stack.json")


@dataclass(frozen=True)
class Pairing:
    torch_npu: str
    torch: str
    cann: tuple[str, ...]  # empty: the torch pin is known, the CANN pairing is not in the table


@lru_cache(maxsize=None)
def load_table(path: Path = STACK_FILE) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def table_date() -> str:
    return str(load_table()["date"])


def table_source() -> str:
    return str(load_table()["sources"]["pairing"])


def _norm(version: str) -> str:
    # '2.12.0+cpu' and '2.12.0' are the same torch release for the pin; a local label is a build flavour.
    return version.strip().split("+")[0]


def pairing(torch_npu_version: str | None) -> Pairing | None:
    """The table's row for this torch_npu version, or None when the table does not know it."""
    if not torch_npu_version:
        return None
    want = _norm(torch_npu_version)
    for row in load_table()["torch_npu"]:
        if row["torch_npu"] == want:
            return Pairing(row["torch_npu"], row["torch"], tuple(row["cann"]))
    return None


def cann_matches(cann_version: str | None, listed: tuple[str, ...]) -> bool:
    """'9.1.0' matches a listed '9.1.0'; a toolkit that says '9.1.0.1' or '9.1.0-beta' is the same release line."""
    if not cann_version:
        return False
    have = re.match(r"\d+(?:\.\d+)*", cann_version.strip())
    return bool(have) and any(have.group(0) == c or have.group(0).startswith(c + ".") for c in listed)


def chip_model(name: str) -> str:
    """'Ascend910B3' / '910B3' / 'Ascend910_9382' -> '910B3' / '910_9382' (torch and npu-smi spell it differently)."""
    return re.sub(r"^\s*Ascend\s*", "", name or "", flags=re.I).strip()


def bf16_capable(name: str) -> bool | None:
    """True / False from the chip's name, None for a name the table does not list.

    torch_npu reports bf16 from SoC Ascend910B1 on (910B1-B4, 910_93xx, 950); not on 910A, 910ProA/ProB,
    the legacy plain '910B' name, or 310P (Ascend/pytorch NpuVariables.cpp; LLaMA-Factory #4339, #7489).
    """
    model = chip_model(name).upper()
    table = load_table()
    if any(model.startswith(c.upper()) for c in table["bf16_chips"]):
        return True
    if model == "910B" or any(model.startswith(c.upper()) for c in table["no_bf16_chips"]):
        return False
    return None
