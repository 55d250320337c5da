"""What every figure of the report shares: colours (one per noise level, the same in every figure),
line styles, panel grids with the legend outside the data, axis helpers and saving.

Conventions: training curves solid, held-out curves dashed, trivial baselines dotted grey; a noise
level has the same colour in every figure (:func:`level_color`); the paper's curves use the colour
of their level too, in panels of their own, titled with :data:`~trainstats.analysis.paper.PAPER_LABEL`.
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["COLORS", "DPI", "TRAIN", "HELDOUT", "BASELINE", "safe_name", "level_color", "level_label", "run_colors",
           "kind_title", "level_groups", "over_seeds", "draw", "select", "dev_baseline", "grid", "save",
           "legend_below", "legend_right", "suptitle", "epoch_axis", "percent_axis", "style_handles"]

#: noise groups of samples: all / clean / noisy
COLORS = {"clean": "tab:blue", "noisy": "tab:red", "all": "0.3", "heldout": "0.1"}
#: dots per inch of every PNG (small files; figures are drawn at their print size in inches)
DPI = 90
TRAIN = dict(ls="-", lw=1.5)
HELDOUT = dict(ls="--", lw=1.5)
BASELINE = dict(ls=":", lw=1.3, color="0.45")
_CMAP = matplotlib.colormaps["plasma"]


def safe_name(text: str) -> str:
    """A file-name-safe version of a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "run"


def level_color(level: float | None, fallback: int = 0):
    """The colour of a noise level (a fraction), the same in every figure: plasma from 0 % (dark blue)
    to 100 % (orange); an unknown level takes the ``fallback``-th colour of tab10."""
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return plt.get_cmap("tab10")(fallback % 10)
    return _CMAP(0.05 + 0.8 * min(max(float(level), 0.0), 1.0))


def level_label(level: float | None, run: str | None = None) -> str:
    """``"noise 25 %"`` (or the run name when the level is unknown)."""
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return run or "noise ?"
    pct = 100 * float(level)
    return f"noise {pct:.0f} %" if abs(pct - round(pct)) < 1e-6 else f"noise {pct:.1f} %"


def run_colors(runs: pd.DataFrame) -> dict[str, tuple]:
    """Run -> the colour of its noise level (runs of one level share it)."""
    return {r: level_color(None if pd.isna(lv) else float(lv), i)
            for i, (r, lv) in enumerate(zip(runs["run"], runs["noise_level"]))}


def kind_title(kind: str | None) -> str:
    return "noise of unknown kind" if kind is None else f"{kind} noise"


def level_groups(runs: pd.DataFrame, names: list[str]) -> list[tuple[float | None, list[str], str, tuple]]:
    """``(level, runs, label, colour)`` per noise level among ``names`` (seeds together), by level."""
    r = runs[runs["run"].isin(names)]
    out, unknown = {}, []
    for i, (name, lv) in enumerate(zip(r["run"], r["noise_level"])):
        if pd.isna(lv):
            unknown.append((None, [name], name, level_color(None, i)))
        else:
            out.setdefault(float(lv), []).append(name)
    known = [(lv, rs, level_label(lv), level_color(lv)) for lv, rs in sorted(out.items())]
    return known + unknown


def over_seeds(m: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Mean, min and max over the runs ``names`` per epoch (columns epoch, mean, lo, hi)."""
    d = m[m["run"].isin(names)]
    g = d.groupby(["epoch", "run"], observed=True)["value"].mean().groupby(level="epoch")
    return pd.DataFrame({"mean": g.mean(), "lo": g.min(), "hi": g.max()}).reset_index()


def draw(ax, d: pd.DataFrame, color, line: dict, label: str | None = None) -> None:
    if not len(d):
        return
    ax.plot(d["epoch"], d["mean"], color=color, marker="o" if len(d) < 20 else None, ms=3, label=label, **line)
    if (d["hi"] > d["lo"]).any():
        ax.fill_between(d["epoch"], d["lo"], d["hi"], color=color, alpha=0.15, lw=0)


def select(metrics: pd.DataFrame, *, metric: str, split: str, head: str, group: str = "all",
            subset: str = "all") -> pd.DataFrame:
    return metrics[(metrics["metric"] == metric) & (metrics["split"] == split) & (metrics["head"] == head)
                   & (metrics["noise_group"] == group) & (metrics["subset"] == subset)]


def dev_baseline(metrics: pd.DataFrame, head: str, names: list[str]) -> float | None:
    """The held-out "always no bug" accuracy of ``head`` (mean over the runs and epochs), or None."""
    b = select(metrics, metric="always_no_bug", split="dev", head=head)
    b = b[b["run"].isin(names)]
    return float(b["value"].mean()) if len(b) else None


_LEFT, _RIGHT, _TOP, _BOTTOM = 0.85, 0.25, 0.3, 0.6  # margins in inches around the panels
_LINE = 0.19  # one line of 8-10 pt text, inches


def grid(nrows: int, ncols: int, *, panel: tuple[float, float] = (3.4, 2.4), gap: tuple[float, float] = (0.85, 0.85),
         right: float = 0.0):
    """A figure of ``nrows x ncols`` panels of ``panel`` inches, ``gap`` inches apart (room for the
    labels between them; ``right``: extra inches on the right, e.g. for a legend beside the last
    column); the margins for title and legend are fixed in :func:`save`. Returns
    ``(fig, axes)``, axes 2-D. (Fixed margins, not constrained layout: half the drawing time.)"""
    width = _LEFT + _RIGHT + right + ncols * panel[0] + (ncols - 1) * gap[0]
    height = _TOP + _BOTTOM + nrows * panel[1] + (nrows - 1) * gap[1]
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(width, 7.5), height), squeeze=False)
    fig._trainstats = dict(nrows=nrows, ncols=ncols, panel=panel, gap=gap, title_lines=0, legend_rows=0,
                           right=right)
    return fig, axes


def _layout(fig) -> None:
    spec = getattr(fig, "_trainstats", None)
    if spec is None:
        return
    (pw, ph), (gw, gh) = spec["panel"], spec["gap"]
    inner_w = spec["ncols"] * pw + (spec["ncols"] - 1) * gw
    top = _TOP + _LINE * 1.15 * spec["title_lines"]
    bottom = _BOTTOM + _LINE * spec["legend_rows"] + (0.1 if spec["legend_rows"] else 0.0)
    need = _LEFT + _RIGHT + spec["right"] + inner_w
    width = max(need, 7.5)
    left = _LEFT + (width - need) / 2  # centred when widened
    height = top + bottom + spec["nrows"] * ph + (spec["nrows"] - 1) * gh
    fig.set_size_inches(width, height)
    fig.subplots_adjust(left=left / width, right=(left + inner_w) / width, bottom=bottom / height,
                        top=1 - top / height, wspace=gw / pw, hspace=gh / ph)
    if fig._suptitle is not None:
        fig._suptitle.set_y(1 - 0.08 / height)
        fig._suptitle.set_va("top")
    for leg in fig.legends:
        leg.set_bbox_to_anchor((0.5, 0.06 / height), transform=fig.transFigure)


def save(fig, path: Path) -> Path:
    """Lay ``fig`` out, write it as a 256-colour PNG at :data:`DPI` and close it.

    Plots have few colours, so an adaptive palette looks the same as full colour at about a quarter
    of the size (the default demo's report stays well under 5 MB)."""
    from PIL import Image  # matplotlib's own dependency

    _layout(fig)
    fig.set_dpi(DPI)
    fig.canvas.draw()
    rgb = Image.frombuffer("RGBA", fig.canvas.get_width_height(physical=True), fig.canvas.buffer_rgba(),
                           "raw", "RGBA", 0, 1).convert("RGB")
    plt.close(fig)
    rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, format="PNG", optimize=True)
    return path


def _dedupe(handles, labels):
    seen: dict[str, object] = {}
    for h, lab in zip(handles, labels):
        if lab and not lab.startswith("_") and lab not in seen:
            seen[lab] = h
    return list(seen.values()), list(seen)


def legend_below(fig, handles=None, labels=None, *, ncol: int | None = None, fontsize: float = 8,
                 markerscale: float = 1.0) -> None:
    """One legend for the whole figure, under the panels (never on the data)."""
    if handles is None:
        handles, labels = [], []
        for ax in fig.axes:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
    handles, labels = _dedupe(handles, labels)
    if handles:
        longest = max(len(lab) for lab in labels)
        fit = max(1, int(fig.get_size_inches()[0] / (0.6 + longest * fontsize / 130)))  # columns that fit the width
        ncol = min(ncol or 4, fit, len(handles))
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False,
                   borderaxespad=0.0, markerscale=markerscale)
        if hasattr(fig, "_trainstats"):
            fig._trainstats["legend_rows"] = math.ceil(len(handles) / ncol)


def suptitle(fig, text: str, *, fontsize: float = 10) -> None:
    """The figure's title, wrapped to the figure's width (what is compared, in words)."""
    width = max(20, int(fig.get_size_inches()[0] * 120 / fontsize))  # characters per line
    lines = textwrap.wrap(text, width)
    fig.suptitle("\n".join(lines), fontsize=fontsize)
    if hasattr(fig, "_trainstats"):
        fig._trainstats["title_lines"] = len(lines)


def legend_right(ax, *, fontsize: float = 7, title: str | None = None) -> None:
    """A panel's legend outside it, on its right (for long lists such as ROC curves)."""
    handles, labels = _dedupe(*ax.get_legend_handles_labels())
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=fontsize,
                  title=title, title_fontsize=fontsize, frameon=False, borderaxespad=0.0)


def epoch_axis(ax, label: str = "epoch (as recorded, first = 0)") -> None:
    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(alpha=0.3)


def percent_axis(ax, label: str) -> None:
    """A y axis of fractions shown in percent, 0-100 %."""
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(label)


def style_handles(*, train: str | None = "training", heldout: str | None = "held-out (dev)",
                  baseline: str | None = None) -> tuple[list, list]:
    """Legend entries explaining the line styles (black, independent of the level colours)."""
    out = []
    if train:
        out.append((Line2D([], [], color="0.2", **TRAIN), train))
    if heldout:
        out.append((Line2D([], [], color="0.2", **HELDOUT), heldout))
    if baseline:
        out.append((Line2D([], [], **BASELINE), baseline))
    return [h for h, _ in out], [lab for _, lab in out]
