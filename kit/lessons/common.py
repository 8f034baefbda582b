"""Shared by the lessons: fonts for Chinese labels, pictures as HTML, the model on the meta device."""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import tempfile
from pathlib import Path
from typing import Any, Mapping

from kit.config import Config
from kit.i18n import _


# ---------------------------------------------------------------- shared

CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Heiti SC")


@functools.lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _label(message: str) -> str:
    """``_(message)`` for text drawn in a figure; where no installed font has Chinese glyphs the English is
    drawn instead of a translation that would come out as empty boxes."""
    text = _(message)
    return text if text.isascii() or _cjk_font() else message


def _fonts() -> Any:
    """While drawing: a CJK font first in line when one is installed (matplotlib's default has no Chinese)."""
    import contextlib

    import matplotlib

    font = _cjk_font()
    if font is None:
        return contextlib.nullcontext()
    return matplotlib.rc_context({"font.sans-serif": [font, *matplotlib.rcParams["font.sans-serif"]]})


class Picture:
    """A matplotlib Figure that IPython shows as a PNG (kit.fmt.Picture), drawn with the CJK font where one is installed."""

    def __init__(self, figure: Any, dpi: int = 100):
        from kit.fmt import Picture as Plain

        self._plain = Plain(figure, dpi)
        self.figure = figure

    def _repr_png_(self) -> bytes:
        with _fonts():
            return self._plain._repr_png_()


def _img(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as an inline PNG (drawn by the Figure itself: no pyplot, the kernel's backend stays)."""
    buf = io.BytesIO()
    with _fonts():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _model_dir(cfg: Config) -> Path:
    from kit.estimate import _model_dir as resolve  # a local folder without a hub call, else config.json only

    return resolve(cfg.model.model_name_or_path, cfg.model.cache_dir)


def _meta(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> Any:
    """The model on the meta device (shapes, no memory) from its folder or a config.json dict."""
    from kit import model as model_mod

    if isinstance(config, Mapping):
        with tempfile.TemporaryDirectory(prefix="kit-lessons-") as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(dict(config)), encoding="utf-8")
            return model_mod.meta_model(Path(tmp), trust_remote_code)
    return model_mod.meta_model(Path(config), trust_remote_code)


def linear_shapes(model: Any) -> dict[str, tuple[int, int, int]]:
    """Per linear-layer short name: (out_features, in_features, how many layers have one)."""
    import torch

    shapes: dict[str, tuple[int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            short = name.rsplit(".", 1)[-1]
            out_f, in_f, n = shapes.get(short, (module.out_features, module.in_features, 0))
            shapes[short] = (out_f, in_f, n + 1)
    return shapes


def matmul_parameters(config: str | Path | Mapping[str, Any], trust_remote_code: bool = False) -> int:
    """Weights that take part in a matrix multiply per token: every linear layer's weight, the output head included.

    The input embedding is a table lookup, not a multiply; a tied output head multiplies by the same
    table, so it counts once as the head.
    """
    return sum(o * i * n for o, i, n in linear_shapes(_meta(config, trust_remote_code)).values())
