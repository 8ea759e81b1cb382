"""The HTML report's plots, drawn with matplotlib from metrics.json's content, as PNG bytes.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas: no
pyplot state, no display and no backend selection, so this runs in any executor process.
"""
import io
from typing import Any, Mapping, Optional, Sequence

from matplotlib import figure
from matplotlib import ticker
from matplotlib.backends import backend_agg
import numpy as np

from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import results as results_lib
from components.retrieval_evaluator import slices as slices_lib

_DPI = 100
# One colour per section, the same in every plot (matplotlib's default cycle).
_COLORS = {results_lib.MODEL_SECTION: "C0", results_lib.POPULARITY_SECTION: "C7",
           results_lib.EASE_SECTION: "C1", results_lib.BLESSED_SECTION: "C2"}
_CATALOG_COLOR = "C9"
_SLICE_LABELS = {"few_ratings": "few ratings", "some_ratings": "some ratings",
                 "many_ratings": "many ratings", "long_tail": "long-tail movies",
                 "all": "all users"}


def curves_png(results: Mapping[str, Any], gate_k: Optional[int] = None) -> bytes:
  """hit_rate@k and recall@k against k = 1..100, one line per model and baseline."""
  curves = results[results_lib.CURVES_FIELD]
  fig = figure.Figure(figsize=(10, 4), dpi=_DPI)
  for i, family in enumerate(names.CURVE_FAMILIES):
    axes = fig.add_subplot(1, len(names.CURVE_FAMILIES), i + 1)
    for section in results_lib.present_sections(results):
      axes.plot(curves[results_lib.CURVE_K], curves[section][family],
                label=results_lib.SECTION_LABELS[section], color=_COLORS[section])
    if gate_k is not None:
      axes.axvline(gate_k, color="0.6", linestyle=":", linewidth=1)
    axes.set(xlabel="k (movies recommended, seen ones excluded)",
             ylabel=f"{family}@k", title=f"{family}@k", xlim=(1, max(curves["k"])),
             ylim=(0, None))
    axes.grid(alpha=0.3)
  fig.axes[0].legend(loc="upper left")
  return _png(fig)


def slices_png(results: Mapping[str, Any], ks: Sequence[int]) -> bytes:
  """Bars per slice: hit_rate at the smallest and largest k, and the tail share of slots."""
  sections = results_lib.present_sections(results)
  slice_results = results[results_lib.SLICES_FIELD]
  hit_panels = [names.at(names.HIT_RATE, k) for k in sorted({min(ks), max(ks)})]
  tail_share = names.at(names.TAIL_SHARE, names.SLOTS_K)
  panels = [(metric, slices_lib.SLICES) for metric in hit_panels]
  panels.append((tail_share, slices_lib.ACTIVITY_SLICES + ("all",)))
  fig = figure.Figure(figsize=(4.2 * len(panels), 4), dpi=_DPI)
  for i, (metric, slice_names) in enumerate(panels):
    axes = fig.add_subplot(1, len(panels), i + 1)
    width = 0.8 / len(sections)
    for j, section in enumerate(sections):
      values = [_slice_value(results, slice_results, section, name, metric)
                for name in slice_names]
      axes.bar(np.arange(len(slice_names)) + (j - (len(sections) - 1) / 2) * width,
               [0 if v is None else v for v in values], width,
               label=results_lib.SECTION_LABELS[section], color=_COLORS[section])
    axes.set_xticks(np.arange(len(slice_names)),
                    [_SLICE_LABELS[name] for name in slice_names], rotation=15)
    axes.set(title=metric, ylim=(0, None))
    axes.grid(axis="y", alpha=0.3)
  # One legend for all panels, above them, so it never hides a bar.
  fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="upper center",
             ncol=len(sections), frameon=False)
  return _png(fig, top=0.86)


def popularity_png(results: Mapping[str, Any]) -> bytes:
  """Share of recommended top-10 slots per popularity bin, against the catalog's share."""
  histogram = results[results_lib.HISTOGRAM_FIELD]
  edges = histogram["bin_edges"]
  series = [("catalog movies", histogram["catalog"], _CATALOG_COLOR)] + [
      (f"{results_lib.SECTION_LABELS[s]} top {names.SLOTS_K}", histogram[s], _COLORS[s])
      for s in results_lib.present_sections(results) if s in histogram]
  fig = figure.Figure(figsize=(10, 4), dpi=_DPI)
  axes = fig.add_subplot(1, 1, 1)
  width = 0.8 / len(series)
  positions = np.arange(len(edges) - 1)
  for j, (label, shares, color) in enumerate(series):
    axes.bar(positions + (j - (len(series) - 1) / 2) * width, shares, width, label=label,
             color=color)
  axes.set_xticks(positions, [_bin_label(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])])
  axes.set(xlabel="train ratings of the movie", ylabel="share",
           title="Popularity of recommended movies vs the catalog")
  axes.legend(fontsize="small")
  axes.grid(axis="y", alpha=0.3)
  return _png(fig)


def loss_png(history: Mapping[str, Sequence[float]]) -> bytes:
  """Training and validation loss per epoch (the Trainer's history)."""
  fig = figure.Figure(figsize=(6, 4), dpi=_DPI)
  axes = fig.add_subplot(1, 1, 1)
  for key, label in (("mean_loss", "training"), ("val_mean_loss", "validation")):
    values = history.get(key) or []
    if values:
      axes.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
  axes.set(xlabel="epoch", ylabel="mean loss", title="Retrieval loss per epoch")
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  axes.legend()
  axes.grid(alpha=0.3)
  return _png(fig)


def _slice_value(results, slice_results, section: str, name: str, metric: str):
  if name == "all":
    return results[section].get(metric)
  return slice_results[section][name].get(metric)


def _bin_label(low: int, high: int) -> str:
  return str(low) if high == low + 1 else f"{low}-{high - 1}"


def _png(fig: figure.Figure, top: float = 1.0) -> bytes:
  """The figure as PNG bytes; `top` < 1 leaves room above the panels for a legend."""
  backend_agg.FigureCanvasAgg(fig)
  fig.tight_layout(rect=(0, 0, 1, top))
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  return buffer.getvalue()
