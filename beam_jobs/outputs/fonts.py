"""A CJK font for matplotlib, so Japanese tick labels render instead of empty boxes.

The IPAexGothic font ships inside the `japanize-matplotlib` wheel; we register the file
directly rather than importing that package (which patches global state on import).
"""

from __future__ import annotations

import functools
import importlib.resources


@functools.cache
def use_japanese_font() -> str:
    """Register IPAexGothic with matplotlib and make it the default family; returns its name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    path = importlib.resources.files("japanize_matplotlib") / "fonts" / "ipaexg.ttf"
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    plt.rcParams["font.family"] = [name, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return name
