"""What the notebooks draw and show: Chinese-capable fonts for figures, figures as PNG or inline HTML.

Used by the tutorial helpers and the lessons alike (neither imports the other for it).
"""

from __future__ import annotations

import base64
import functools
import html
import io
from typing import Any

from kit.i18n import _


CJK_FONTS = ("Noto Sans SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC")

# Packages whose wheels carry a Simplified Chinese font (SIL OFL): the kit's install brings the first one, so a
# fresh machine without system CJK fonts still draws Chinese labels; the others are used where a person has them.
FONT_PACKAGES = (("pylopdf_fonts_zh_cn", "NotoSansSC-Regular.otf"), ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf"))

_said_no_font = False


def _packaged_font_files() -> list[str]:
    import importlib.util
    from pathlib import Path

    found = []
    for package, name in FONT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))) / name
        if path.is_file():
            found.append(str(path))
    return found


@functools.lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    """The family name of a font with Chinese glyphs: a packaged one registered with matplotlib first (it is
    known to cover Simplified Chinese), else an installed system font; None (said once, in the reader's
    language) where there is none."""
    from matplotlib import font_manager

    for path in _packaged_font_files():
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):  # an unreadable file: try the next source
            continue
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _say_no_font_once() -> None:
    global _said_no_font
    if not _said_no_font:
        _said_no_font = True
        import sys

        print(_("No font with Chinese glyphs was found, so figures are labelled in English. "
                "Install one with: pip install pylopdf-fonts-zh-cn"), file=sys.stderr)


def plot_label(message: str) -> str:
    """``_(message)`` for text drawn in a figure; where no installed font has Chinese glyphs the English is
    drawn instead of a translation that would come out as empty boxes."""
    text = _(message)
    if text.isascii() or _cjk_font():
        return text
    _say_no_font_once()
    return message


def figure_fonts() -> Any:
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
        with figure_fonts():
            return self._plain._repr_png_()


def png_html(fig: Any, dpi: int = 100) -> str:
    """A matplotlib Figure as an inline PNG (drawn by the Figure itself: no pyplot, the kernel's backend stays)."""
    buf = io.BytesIO()
    with figure_fonts():
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


def card_name(name: str) -> str:
    """A card's display name in the reader's language: "Ascend 910B" is 昇腾 910B in Chinese text."""
    return _("Ascend") + name[len("Ascend"):] if name.startswith("Ascend ") else name


def html_escape(value: Any) -> str:
    return html.escape(str(value))
