"""The Evaluator's reports, rendered from metrics.json's content alone.

`text` is the plain-text report (report.txt, also logged); `html` the self-contained HTML
report (report.html): the same tables, the plots as base64 PNGs, no script, no style sheet
or font from the network. Every number in an HTML table cell carries `data-key`, the
"/"-separated path of its value in metrics.json, and is shown as `format_value` writes it,
so a test (and a reader) can check each against the file.
"""
import base64
import html as html_lib
from typing import Any, List, Mapping, Sequence

from components.retrieval_evaluator import examples as examples_lib
from components.retrieval_evaluator import metric_names as names
from components.retrieval_evaluator import plots
from components.retrieval_evaluator import results as results_lib
from components.retrieval_evaluator import slices as slices_lib
from contracts import artifacts

# Metrics of the user slices shown in the reports (metrics.json has every one).
_SLICE_FAMILIES = (names.HIT_RATE, names.RECALL)
# Columns of the ranking-stage table.
_RATING_ERRORS = (names.RMSE, names.MAE)
_MISSING = "-"


def format_value(value: Any) -> str:
  """How a reported number is written: ints as is, floats with 4 decimals (1 from 1000
  on), booleans as yes/no, None as '-'."""
  if value is None:
    return _MISSING
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, int):
    return str(value)
  return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def text(results: Mapping[str, Any]) -> str:
  """metric | model | popularity | EASE | blessed-baseline, the slices, the ranking stage
  (only with a ranking model), then the verdict."""
  sections = results_lib.SECTIONS
  header = ["metric"] + [_column_label(s) for s in sections]
  rows = [[name] + [format_value((results.get(s) or {}).get(name)) for s in sections]
          for name in results[results_lib.MODEL_SECTION]]
  lines = _text_table(header, rows)
  lines += ["", _ease_sentence(results[results_lib.EASE_FIELD])]
  lines += ["", _activity_sentence(results), _tail_sentence(results)]
  slice_rows = [[f"{name} {metric}"] + [
      format_value(_slice(results, s, name).get(metric)) for s in sections]
                for name, metric in _slice_rows(results, compact=True)]
  lines += _text_table(["slice metric"] + header[1:], slice_rows)
  if results.get(results_lib.RANKING_FIELD) is not None:
    lines += ["", _ranking_sentence(results)]
    lines += _text_table(["rating model", *_RATING_ERRORS], [
        [label] + [format_value(lookup(results, f"{key}/{error}")) for error in _RATING_ERRORS]
        for label, key in _ranking_rows()])
    ranked_columns = _ranked_order_columns(results)
    if ranked_columns:
      lines += ["", _ranked_order_sentence(results)]
      lines += _text_table(["list order", *ranked_columns], [
          [label] + [format_value(lookup(results, f"{prefix}/{name}")) for name in ranked_columns]
          for label, prefix in _RANKED_ORDER_ROWS])
  lines += ["", f"Blessed: {'yes' if results[results_lib.BLESSED_FIELD] else 'no'}"]
  lines += [f"  - {reason}" for reason in results[results_lib.REASONS_FIELD]]
  return "\n".join(lines) + "\n"


def html(results: Mapping[str, Any]) -> str:
  """The self-contained HTML report (see the module docstring)."""
  config = results[results_lib.CONFIG_FIELD]
  ks = config["ks"]
  gate_k = int(config["gate_metric"].split("@")[1])
  history = results.get(results_lib.HISTORY_FIELD)
  parts = [
      _HEAD,
      "<h1>Retrieval evaluation</h1>",
      _verdict(results),
      _overview(results),
      "<h2>Metrics</h2>",
      _metrics_table(results),
      *_ranking_html(results),
      "<h2>Hit rate and recall at k = 1..100</h2>",
      "<p>Share of eval pairs (hit rate) and mean share of each user's eval movies "
      "(recall) found in the top k, the user's train movies excluded. The dotted line is "
      f"the gate's k ({gate_k}).</p>",
      _image(plots.curves_png(results, gate_k), "hit_rate@k and recall@k curves"),
      "<h2>Slices</h2>",
      f"<p>{html_lib.escape(_activity_sentence(results))}<br>"
      f"{html_lib.escape(_tail_sentence(results))}</p>",
      _image(plots.slices_png(results, ks), "metrics per slice"),
      _slices_table(results),
      "<h2>Popularity of recommended movies</h2>",
      _image(plots.popularity_png(results), "popularity histogram"),
      "<h2>Training</h2>",
      (_image(plots.loss_png(history), "loss per epoch") + _history_table(history)
       + _ease_factor_paragraph(history)
       if history else "<p>Training history: not available (the model artifact has no "
       "training_history.json).</p>"),
      "<h2>EASE baseline</h2>",
      f"<p>{html_lib.escape(_ease_sentence(results[results_lib.EASE_FIELD]))}</p>",
      _ease_table(results[results_lib.EASE_FIELD]),
      "<h2>Example users</h2>",
      _examples_table(results),
      "</body></html>",
  ]
  return "\n".join(parts) + "\n"


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Retrieval evaluation</title>
<style>
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; text-align: left; }
.blessed { color: #1a7f37; } .not-blessed { color: #b42318; }
li.hit { font-weight: bold; color: #1a7f37; }
img { max-width: 100%; }
ol { margin: 0; padding-left: 1.6em; }
</style></head><body>"""


def _verdict(results: Mapping[str, Any]) -> str:
  blessed = results[results_lib.BLESSED_FIELD]
  reasons = "".join(f"<li>{html_lib.escape(r)}</li>" for r in results[results_lib.REASONS_FIELD])
  return (f"<p class=\"{'blessed' if blessed else 'not-blessed'}\"><strong>"
          f"{'Blessed' if blessed else 'Not blessed'}</strong> (gate: "
          f"{html_lib.escape(results[results_lib.CONFIG_FIELD]['gate_metric'])} against "
          f"{html_lib.escape(results[results_lib.CONFIG_FIELD]['bless_against'])})</p>"
          f"<ul>{reasons}</ul>")


def _overview(results: Mapping[str, Any]) -> str:
  config = results[results_lib.CONFIG_FIELD]
  rows = [("model", html_lib.escape(str(config.get("model_uri")))),
          ("last blessed model", html_lib.escape(str(config.get("baseline_model_uri") or
                                                     "none")))]
  cells = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
  counts = [(label, f"{results_lib.MODEL_SECTION}/{name}") for label, name in (
      ("eval users", names.NUM_EVAL_USERS), ("eval pairs", names.NUM_EVAL_PAIRS),
      ("eval users before sampling", names.TOTAL_EVAL_USERS))]
  cells += "".join(f"<tr><th>{label}</th>{_number_cell(results, key)}</tr>"
                   for label, key in counts)
  cells += ("<tr><th>query time</th><td>"
            f"{html_lib.escape(str(config.get('query_time')))}</td></tr>")
  return f"<table>{cells}</table>"


def _metrics_table(results: Mapping[str, Any]) -> str:
  sections = results_lib.present_sections(results)
  header = "".join(f"<th>{_column_label(s)}</th>" for s in sections)
  body = "".join(
      f"<tr><th>{html_lib.escape(name)}</th>"
      + "".join(_number_cell(results, f"{s}/{name}") for s in sections) + "</tr>"
      for name in results[results_lib.MODEL_SECTION])
  return f"<table><tr><th>metric</th>{header}</tr>{body}</table>"


def _ranking_html(results: Mapping[str, Any]) -> List[str]:
  """The "Ranking stage" heading, sentence and table; nothing without a ranking model."""
  if results.get(results_lib.RANKING_FIELD) is None:
    return []
  header = "".join(f"<th>{error}</th>" for error in _RATING_ERRORS)
  body = "".join(f"<tr><th>{label}</th>"
                 + "".join(_number_cell(results, f"{key}/{error}") for error in _RATING_ERRORS)
                 + "</tr>" for label, key in _ranking_rows())
  page = ["<h2>Ranking stage</h2>",
          f"<p>{html_lib.escape(_ranking_sentence(results))}</p>",
          f"<table><tr><th>rating model</th>{header}</tr>{body}</table>"]
  ranked_columns = _ranked_order_columns(results)
  if ranked_columns:
    header = "".join(f"<th>{name}</th>" for name in ranked_columns)
    body = "".join(f"<tr><th>{label}</th>"
                   + "".join(_number_cell(results, f"{prefix}/{name}") for name in ranked_columns)
                   + "</tr>" for label, prefix in _RANKED_ORDER_ROWS)
    page += [f"<p>{html_lib.escape(_ranked_order_sentence(results))}</p>",
             f"<table><tr><th>list order</th>{header}</tr>{body}</table>"]
  return page


# (label, metrics.json section) of the ranked-order table's rows.
_RANKED_ORDER_ROWS = (
    ("retrieval (serving_default)", results_lib.MODEL_SECTION),
    ("re-ordered (serving_ranked)", f"{results_lib.RANKING_FIELD}/{names.RANKED_ORDER}"))


def _ranked_order_columns(results: Mapping[str, Any]) -> List[str]:
  """The metrics measured on the re-ordered lists; none when they were not measured."""
  ranked = lookup(results, f"{results_lib.RANKING_FIELD}/{names.RANKED_ORDER}")
  return [name for name in ranked or {} if name not in names.RANKED_ORDER_SETTINGS]


def _ranked_order_sentence(results: Mapping[str, Any]) -> str:
  ranked = lookup(results, f"{results_lib.RANKING_FIELD}/{names.RANKED_ORDER}")
  weight = ranked[names.RANKING_WEIGHT]
  return (f"Ranked order: each eval user's {ranked[names.RANKING_CANDIDATES]} best retrieved "
          f"movies (train movies excluded) re-ordered by {weight:g} x predicted rating + "
          f"{1 - weight:g} x retrieval score (each standardized over the user's movies), as "
          "serving_ranked returns them, against the retrieval order. Not gated: a rating "
          "model ranks by how much a user will like a movie, not by whether they will "
          "watch it.")


def _ranking_rows() -> List[tuple]:
  """(label, metrics.json path) of each row of the ranking-stage table."""
  baselines = f"{results_lib.RANKING_FIELD}/{names.RATING_BASELINES}"
  return [("model", results_lib.RANKING_FIELD),
          ("movie mean", f"{baselines}/{names.MOVIE_MEAN}"),
          ("global mean", f"{baselines}/{names.GLOBAL_MEAN}")]


def _ranking_sentence(results: Mapping[str, Any]) -> str:
  count = results[results_lib.RANKING_FIELD][names.NUM_RATINGS]
  return (f"Ranking stage: predicted ratings on all {count} eval ratings (every eval user, "
          "sampled or not), against two baselines fitted on the train ratings: the mean "
          "train rating (global mean) and each movie's mean shrunk toward it (movie "
          "mean). The model is blessed only if its RMSE is below the global mean's.")


def _slices_table(results: Mapping[str, Any]) -> str:
  sections = results_lib.present_sections(results)
  header = "".join(f"<th>{_column_label(s)}</th>" for s in sections)
  body = "".join(
      f"<tr><th>{html_lib.escape(name)}</th><th>{html_lib.escape(metric)}</th>"
      + "".join(_number_cell(results, "/".join((results_lib.SLICES_FIELD, s, name, metric)))
                for s in sections) + "</tr>"
      for name, metric in _slice_rows(results))
  return f"<table><tr><th>slice</th><th>metric</th>{header}</tr>{body}</table>"


def _history_table(history: Mapping[str, Sequence[float]]) -> str:
  keys = [key for key in ("mean_loss", "val_mean_loss", "examples_per_second")
          if history.get(key)]
  epochs = max(len(history[key]) for key in keys) if keys else 0
  header = "".join(f"<th>{key}</th>" for key in keys)
  body = "".join(
      f"<tr><th>epoch {epoch + 1}</th>" + "".join(
          _number_cell_value(history[key][epoch] if epoch < len(history[key]) else None,
                             f"{results_lib.HISTORY_FIELD}/{key}/{epoch}") for key in keys)
      + "</tr>" for epoch in range(epochs))
  return f"<table><tr><th></th>{header}</tr>{body}</table>"


def _ease_factor_paragraph(history: Mapping[str, Sequence[float]]) -> str:
  """What the Trainer did with the EASE factor (--ease_factor_rank), from its history."""
  if not history.get(artifacts.HISTORY_EASE_FACTOR_RANK):
    recorded = artifacts.HISTORY_EASE_FACTOR_WEIGHT in history
    return ("<p>No EASE factor: the served scores are the towers' alone "
            "(--ease_factor_rank 0).</p>") if recorded else ""
  weight = history[artifacts.HISTORY_EASE_FACTOR_WEIGHT][0]
  rank = history[artifacts.HISTORY_EASE_FACTOR_RANK][0]
  text = (f"EASE factor (rank {rank:g}): "
          + (f"served at weight {weight:g}" if weight else "not served (weight 0)"))
  rates = history.get(artifacts.HISTORY_EASE_FACTOR_VALIDATION_HIT_RATES)
  if rates:
    grid = ", ".join(f"{rate:.4f} at {w:g}"
                     for w, rate in zip(history[artifacts.HISTORY_EASE_FACTOR_WEIGHTS], rates))
    level = history.get(artifacts.HISTORY_EASE_FACTOR_LEVEL_WEIGHTS)
    text += (f", the middle one of the weights whose validation hit rate is level with "
             f"the best ({', '.join(f'{w:g}' for w in level)}; the weights tried: {grid})"
             if level else f", the best validation hit rate of the weights tried ({grid})")
  session_weight = history.get(artifacts.HISTORY_EASE_FACTOR_SESSION_WEIGHT, [0.0])[0]
  text += (f"; EASE fitted with session rows weighted {session_weight:g}" if session_weight
           else "; plain EASE (no session rows)")
  session_rates = history.get(artifacts.HISTORY_EASE_FACTOR_SESSION_VALIDATION_HIT_RATES)
  if session_rates:
    grid = ", ".join(f"{rate:.4f} at {w:g}" for w, rate in
                     zip(history[artifacts.HISTORY_EASE_FACTOR_SESSION_WEIGHTS], session_rates))
    text += f", the best of the session weights tried ({grid})"
  return f"<p>{html_lib.escape(text)}.</p>"


def _ease_table(ease: Mapping[str, Any]) -> str:
  body = "".join(f"<tr><th>{html_lib.escape(key)}</th>"
                 f"{_number_cell_value(value, f'{results_lib.EASE_FIELD}/{key}')}</tr>"
                 for key, value in ease.items())
  return f"<table>{body}</table>"


def _examples_table(results: Mapping[str, Any]) -> str:
  users = results.get(results_lib.EXAMPLES_FIELD) or []
  if not users:
    return "<p>No example users.</p>"
  sections = [s for s in results_lib.SECTIONS if s in users[0][examples_lib.TOP]]
  header = "".join(f"<th>{_column_label(s)} top {names.SLOTS_K}</th>" for s in sections)
  rows = []
  for i, user in enumerate(users):
    last_rated = "".join(f"<li>{html_lib.escape(t)}</li>" for t in user[examples_lib.LAST_RATED])
    tops = "".join("<td><ol>" + "".join(_recommended_item(item)
                                        for item in user[examples_lib.TOP][s]) + "</ol></td>"
                   for s in sections)
    key = f"{results_lib.EXAMPLES_FIELD}/{i}"
    rows.append(
        f"<tr><td data-key=\"{key}/{examples_lib.USER_ID}\">"
        f"{html_lib.escape(user[examples_lib.USER_ID])}</td>"
        f"{_number_cell(results, f'{key}/{examples_lib.NUM_EVAL_MOVIES}')}"
        f"<td><ol>{last_rated}</ol></td>{tops}</tr>")
  return (f"<p>A seeded sample of eval users. ✓ and bold: one of the user's eval movies "
          f"(a hit).</p><table><tr><th>user</th><th>eval movies</th>"
          f"<th>last rated in train (newest first)</th>{header}</tr>{''.join(rows)}</table>")


def _recommended_item(item: Mapping[str, Any]) -> str:
  title = html_lib.escape(item[examples_lib.TITLE])
  return f'<li class="hit">{title} ✓</li>' if item[examples_lib.HIT] else f"<li>{title}</li>"


def _number_cell(results: Mapping[str, Any], key: str) -> str:
  return _number_cell_value(lookup(results, key), key)


def _number_cell_value(value: Any, key: str) -> str:
  return f"<td class=\"num\" data-key=\"{html_lib.escape(key)}\">{format_value(value)}</td>"


def lookup(results: Mapping[str, Any], key: str) -> Any:
  """The value at a "/"-separated `data-key` path of metrics.json (list indices as ints)."""
  value: Any = results
  for part in key.split("/"):
    if value is None:
      return None
    value = value[int(part)] if isinstance(value, list) else value.get(part)
  return value


def _slice_rows(results: Mapping[str, Any], compact: bool = False) -> List[tuple]:
  """(slice, metric) rows of the slice tables; `compact`: hit rates and tail share only."""
  ks = results[results_lib.CONFIG_FIELD]["ks"]
  families = (names.HIT_RATE,) if compact else _SLICE_FAMILIES
  user_metrics = [names.at(family, k) for family in families for k in ks]
  user_metrics += ([names.at(names.TAIL_SHARE, names.SLOTS_K)] if compact else
                   [names.at(names.NDCG, names.NDCG_K), *names.popularity_bias_names()])
  user_metrics.append(names.NUM_EVAL_USERS)
  rows = [(name, metric) for name in slices_lib.ACTIVITY_SLICES for metric in user_metrics]
  rows += [(slices_lib.LONG_TAIL_SLICE, names.at(names.HIT_RATE, k)) for k in ks]
  rows.append((slices_lib.LONG_TAIL_SLICE, names.NUM_EVAL_PAIRS))
  return rows


def _slice(results: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
  return ((results[results_lib.SLICES_FIELD].get(section) or {}).get(name)) or {}


def _activity_sentence(results: Mapping[str, Any]) -> str:
  definition = results[results_lib.SLICES_FIELD][results_lib.SLICE_DEFINITIONS]
  buckets = definition["user_activity"]["buckets"]
  parts = [f"{name} = {b['min_train_ratings']}-{b['max_train_ratings']} "
           f"({b['num_users']} users)" if b["num_users"] else
           f"{name} empty (the tertiles coincide)" for name, b in buckets.items()]
  return ("User activity (train ratings per eval user; boundaries at the tertiles): "
          + ", ".join(parts) + ".")


def _tail_sentence(results: Mapping[str, Any]) -> str:
  tail = results[results_lib.SLICES_FIELD][results_lib.SLICE_DEFINITIONS]["long_tail"]
  return (f"Long tail: movies with fewer than {tail['min_head_train_ratings']} train "
          f"ratings ({tail['num_tail_movies']} movies; the head is the most rated "
          f"{tail['head_fraction']:.0%} of the catalog, {tail['num_head_movies']} movies).")


def _ease_sentence(ease: Mapping[str, Any]) -> str:
  if ease["truncated"]:
    scope = (f"covers the {ease['num_items']} most rated movies only (ease_max_items; "
             f"{ease['rated_movies']} were rated in train): the other "
             f"{ease['num_movies'] - ease['num_items']} catalog movies are never "
             "recommended by it")
  else:
    scope = (f"covers the {ease['num_items']} movies rated in train (of "
             f"{ease['num_movies']} in the catalog; unrated ones cannot be scored and are "
             "never recommended by it)")
  cold = ease.get(results_lib.EASE_USERS_WITHOUT_HISTORY, 0)
  fallback = (f" The {cold} eval users without train ratings get the popularity "
              "baseline's list from it." if cold else "")
  own = (" A user's own train movies are scored as if the user had been left out of the "
         "fit (top_k_accuracy counts them; the hit rates exclude them)."
         if ease.get("leave_user_out") else "")
  return (f"EASE (l2 {ease['l2']:g}; fitted in {ease['fit_seconds']:.1f} s with "
          f"{ease['working_mib']:.0f} MiB of dense matrices) {scope}.{fallback}{own}")


def _column_label(section: str) -> str:
  # The text report keeps the historical header of the blessed column.
  return {results_lib.BLESSED_SECTION: "blessed-baseline"}.get(
      section, results_lib.SECTION_LABELS[section])


def _text_table(header: List[str], rows: List[List[str]]) -> List[str]:
  rows = [header] + rows
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = [" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
  lines.insert(1, "-+-".join("-" * w for w in widths))
  return lines


def _image(png: bytes, alt: str) -> str:
  return (f"<p><img alt=\"{html_lib.escape(alt)}\" "
          f"src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\"></p>")

