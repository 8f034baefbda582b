"""How the datasets are encoded, for a person to look at: ``kit preprocess`` and notebook 20 both use this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit import config as config_mod
from kit import model as model_mod
from kit.config import Config
from kit.data import IGNORE_INDEX, SFTData, build_sft
from kit.envvars import EnvSettings


@dataclass
class Encoded:
    tokenizer: Any
    data: SFTData

    def pieces(self, index: int) -> list[tuple[str, bool]]:
        """Example ``index`` as runs of text, each marked trained (label kept) or not (label -100)."""
        row = self.data.all[index]
        pieces: list[tuple[str, bool]] = []
        run: list[int] = []
        trained_run: bool | None = None
        for tok, label in zip(row["input_ids"], row["labels"]):
            trained = label != IGNORE_INDEX
            if trained_run is not None and trained != trained_run:
                pieces.append((self.tokenizer.decode(run), trained_run))
                run = []
            run.append(tok)
            trained_run = trained
        if run:
            pieces.append((self.tokenizer.decode(run), bool(trained_run)))
        return pieces

    def counts(self, index: int) -> tuple[int, int]:
        """(tokens, trained tokens) of example ``index``."""
        row = self.data.all[index]
        return len(row["input_ids"]), sum(1 for x in row["labels"] if x != IGNORE_INDEX)


def encode(cfg: Config, env: EnvSettings | None = None) -> Encoded:
    """Every example of the config's datasets, encoded as training would encode it (no split)."""
    config_mod.require(cfg, "preprocess")
    stage = model_mod.tokenizer_stage(cfg, env=env, weights=False)  # tokenizing needs no weights
    return Encoded(stage.tokenizer, build_sft(cfg, stage.tokenizer, stage.template, split=False))
