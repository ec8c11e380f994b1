"""PNG figures with matplotlib's object API and the Agg canvas (no pyplot, no display, no state).

Sweep figures read rows of ``results.csv`` (see ``attnlab.sweeps.results``); evaluation figures
take arrays.
"""

from __future__ import annotations

import math
import os
import statistics
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Series = dict[str, tuple[list[float], list[float], list[float]]]  # label -> (x, mean, std)


def _save(fig: Figure, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  FigureCanvasAgg(fig)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  return path


def line_plot(series: Series, path: str, *, xlabel: str, ylabel: str, title: str = "",
              logx: bool = False, logy: bool = False, hline: float | None = None,
              note: str = "", ylim: tuple[float, float] | None = None,
              band: bool = False) -> str:
  """Lines with ±std error bars (``band``: a shaded ±std band, for curves), one per label."""
  fig = Figure(figsize=(6.4, 4.2))
  ax = fig.subplots()
  for i, (label, (xs, means, stds)) in enumerate(series.items()):
    if band:
      style = _style(i, len(series))
      line, = ax.plot(xs, means, label=label, linestyle=style["linestyle"], linewidth=1.2)
      ax.fill_between(xs, np.subtract(means, stds), np.add(means, stds), alpha=0.15,
                      color=line.get_color(), linewidth=0)
    else:
      ax.errorbar(xs, means, yerr=stds, capsize=3, label=label, **_style(i, len(series)))
  if hline is not None:
    ax.axhline(hline, color="grey", linestyle=":", linewidth=1)
  if logx:
    ax.set_xscale("log", base=2)
    xs = sorted({x for s in series.values() for x in s[0]})
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
  if ylim is not None:
    ax.set_ylim(*ylim)
  if logy:
    ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  if series:
    ax.legend(fontsize=8)
  if note:
    fig.text(0.01, -0.02, note, fontsize=7, color="grey")
  return _save(fig, path)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def _style(i: int, n: int) -> dict:
  """Distinct marker, dash and size per series, larger first, so lines that coincide (several
  models at accuracy 1.0) all stay visible."""
  return {"marker": _MARKERS[i % len(_MARKERS)], "linestyle": _DASHES[i % len(_DASHES)],
          "markersize": 4 + 2.5 * (n - 1 - i), "linewidth": 1.2 + 0.6 * (n - 1 - i) / max(n - 1, 1),
          "alpha": 0.9}


def _numbers(xs) -> bool:
  return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)


def _finished(rows):
  return [r for r in rows if r.get("status") in ("done", "nan")]


def series_over(rows: Sequence[Mapping[str, Any]], x_key: str, y_key: str,
                label_keys: Sequence[str]) -> Series:
  """Mean and std over seeds of ``y_key`` at each ``x_key``, one series per label-key values."""
  cells: dict[str, dict[Any, list[float]]] = {}
  for row in _finished(rows):
    y = row.get(y_key)
    if not isinstance(y, (int, float)) or math.isnan(y) or row.get(x_key) is None:
      continue
    label = ", ".join(str(row.get(k)) for k in label_keys) or y_key.lstrip("_")
    cells.setdefault(label, {}).setdefault(row[x_key], []).append(float(y))
  series = {}
  for label, by_x in cells.items():
    xs = sorted(by_x)
    series[label] = (xs, [statistics.fmean(by_x[x]) for x in xs],
                     [statistics.stdev(by_x[x]) if len(by_x[x]) > 1 else 0.0 for x in xs])
  return series


def metric_vs_length(rows: Sequence[Mapping[str, Any]], metric: str,
                     label_keys: Sequence[str]) -> Series:
  """``metric@L`` columns against L, mean and std over seeds, one series per label."""
  long_rows = []
  for row in rows:
    for key, value in row.items():
      name, _, length = key.partition("@")
      if name == metric and length.isdigit():
        long_rows.append({**row, "_length": int(length), "_value": value})
  return series_over(long_rows, "_length", "_value", label_keys)


def _ylim(metric: str) -> tuple[float, float] | None:
  return (-0.02, 1.02) if metric.endswith("accuracy") else None


def _leaf(key: str) -> str:
  return key.rsplit(".", 1)[-1]


def sweep_figures(rows: Sequence[Mapping[str, Any]], grid_keys: Sequence[str], metric: str,
                  out_dir: str, train_max_length: int | None = None) -> list[str]:
  """Every figure the sweep's grid supports; returns the paths written.

  - ``METRIC_vs_KEY.png`` for each numeric grid key that varies (e.g. distance, noise rate, width),
    one line per model (and per other varying key);
  - ``METRIC_vs_test_length.png`` when each trial was evaluated at several lengths;
  - ``cost_vs_length.png`` (throughput and peak memory) when throughput was logged and a length
    key varies.
  """
  done = _finished(rows)
  varying = [k for k in grid_keys if len({str(r.get(k)) for r in done}) > 1]
  numeric = [k for k in varying if _numbers([r.get(k) for r in done])]
  for model_key in ("arg.model", "model.name"):  # always name the model in the legend
    if model_key in grid_keys and model_key not in varying:
      varying.insert(0, model_key)
  paths = []
  for x_key in numeric:
    labels = [k for k in varying if k != x_key]
    series = series_over(done, x_key, metric, labels)
    if not series:
      continue
    xs = sorted({x for s in series.values() for x in s[0]})
    logx = min(xs) > 0 and max(xs) / min(xs) >= 16
    paths.append(line_plot(series, os.path.join(out_dir, f"{metric}_vs_{_leaf(x_key)}.png"),
                           xlabel=x_key, ylabel=metric, logx=logx, ylim=_ylim(metric),
                           title=f"{metric} vs {_leaf(x_key)} (mean ± std over seeds)"))
  several = any(sum(k.startswith(f"{metric}@") for k in r) > 1 for r in done)
  by_length = metric_vs_length(done, metric, varying) if several else {}
  if by_length:
    paths.append(line_plot(by_length, os.path.join(out_dir, f"{metric}_vs_test_length.png"),
                           xlabel="test length", ylabel=metric, ylim=_ylim(metric),
                           title=f"{metric} vs test length (trained up to {train_max_length})"
                           if train_max_length else f"{metric} vs test length"))
  length_keys = [k for k in numeric if "length" in k]
  if length_keys and any(isinstance(r.get("tokens_per_s"), (int, float)) for r in done):
    paths.append(cost_figure(done, length_keys[0], [k for k in varying if k != length_keys[0]],
                             os.path.join(out_dir, "cost_vs_length.png")))
  return paths


# Grid keys that only set a model's size: a figure against a size-derived column (state_size)
# folds them into the x axis instead of drawing a line per value.
_SIZE_KEYS = ("model.d_model", "model.target_params")


def metric_against(rows: Sequence[Mapping[str, Any]], x_key: str, metric: str,
                   grid_keys: Sequence[str], out_dir: str) -> str:
  """``METRIC_vs_X.png``: ``metric`` against the numeric results column ``x_key`` (e.g.
  state_size), one line per model and per other varying grid value; rows without a number there
  (an encoder has no decoding state) are left out; ValueError when no finished row has one."""
  done = [r for r in _finished(rows) if _numbers([r.get(x_key)])]
  if not done:
    columns = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))})
    raise ValueError(f"--x={x_key!r}: not a numeric column of the finished trials; numeric "
                     f"columns: {columns}")
  labels = [k for k in grid_keys if k not in _SIZE_KEYS and k != x_key
            and len({str(r.get(k)) for r in done}) > 1]
  for model_key in ("arg.model", "model.name"):
    if model_key in grid_keys and model_key not in labels:
      labels.insert(0, model_key)
  series = series_over(done, x_key, metric, labels)
  xs = sorted({x for s in series.values() for x in s[0]})
  logx = min(xs) > 0 and max(xs) / min(xs) >= 16
  return line_plot(series, os.path.join(out_dir, f"{metric}_vs_{_leaf(x_key)}.png"), xlabel=x_key,
                   ylabel=metric, logx=logx, ylim=_ylim(metric),
                   title=f"{metric} vs {_leaf(x_key)} (mean ± std over seeds)")


def cost_figure(rows, length_key: str, label_keys: Sequence[str], path: str) -> str:
  """Training throughput and peak memory against sequence length, side by side, log-log."""
  fig = Figure(figsize=(11, 4.2), layout="constrained")
  axes = fig.subplots(1, 2)
  for ax, key, ylabel in ((axes[0], "tokens_per_s", "training tokens / s"),
                          (axes[1], "peak_mb", "peak memory (MB)")):
    series = series_over(rows, length_key, key, label_keys)
    for i, (label, (xs, means, stds)) in enumerate(series.items()):
      ax.errorbar(xs, means, yerr=stds, capsize=3, label=label, **_style(i, len(series)))
    ax.set_xscale("log", base=2)
    lengths = sorted({x for s in series.values() for x in s[0]})
    ax.set_xticks(lengths, [f"{x:g}" for x in lengths])
    ax.set_yscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
  axes[0].set_title("throughput vs length")
  axes[1].set_title("peak memory vs length")
  return _save(fig, path)


def attention_heads(weights_NLS: np.ndarray, path: str, *, title: str = "",
                    tokens: Sequence[Any] | None = None) -> str:
  """One heat map per head (query rows, key columns) of one layer for one example."""
  weights_NLS = np.asarray(weights_NLS, dtype=np.float32)
  n = weights_NLS.shape[0]
  cols = min(n, 4)
  rows = math.ceil(n / cols)
  fig = Figure(figsize=(3.4 * cols, 3.0 * rows + 0.4), layout="constrained")
  axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
  for h, ax in enumerate(axes):
    if h >= n:
      ax.axis("off")
      continue
    image = ax.imshow(weights_NLS[h], cmap="viridis", vmin=0.0, aspect="auto",
                      interpolation="nearest")
    ax.set_title(f"head {h}", fontsize=9)
    ax.set_xlabel("key position", fontsize=8)
    ax.set_ylabel("query position", fontsize=8)
    if tokens is not None and len(tokens) <= 32:
      ax.set_xticks(range(len(tokens)), [str(t) for t in tokens], fontsize=6)
      ax.set_yticks(range(len(tokens)), [str(t) for t in tokens], fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.046)
  fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def gradient_lag(distances: Sequence[int], norms: Sequence[float], path: str, *,
                 label: str = "", title: str = "") -> str:
  """Mean gradient norm w.r.t. the embedded input against distance from the target (log y)."""
  d = np.asarray(distances)
  g = np.asarray(norms, dtype=np.float64)
  keep = g > 0  # log scale: exact zeros (e.g. positions a causal model cannot see) are left out
  fig = Figure(figsize=(6.4, 4.2))
  ax = fig.subplots()
  ax.plot(d[keep], g[keep], marker=".", label=label or None)
  ax.set_yscale("log")
  ax.set_xlabel("distance from the target position (positions back)")
  ax.set_ylabel("mean ||d loss / d embedded input||")
  ax.set_title(title or "gradient lag")
  ax.grid(alpha=0.3, which="both")
  if label:
    ax.legend(fontsize=8)
  return _save(fig, path)
