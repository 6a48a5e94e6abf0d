"""`kgfusion finance train | evaluate | score | monitor | alerts`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kgfusion.apps.common import (
    DomainGroup,
    bundle_variant,
    emit,
    engine_option,
    json_option,
    kg_store_option,
    load_kg,
    model_variant_option,
    pretrain_corpus_command,
    repo_data_dir,
    restart_option,
    shard_size_option,
)
from kgfusion.apps.finance.config import DEFAULT_BACKEND, DEFAULT_BUNDLE_NAME
from kgfusion.apps.finance.drift_cli import drift_reference
from kgfusion.core.errors import KgfusionError

BACKEND = click.Choice(["auto", "fp32", "int8", "onnx-int8"])  # auto: the best the bundle ships
# pipeline.BY_CHOICES (kept literal here so `--help` does not import pandas): the series alerts come from
BY = click.Choice(["entity", "topic", "topic-group", "company-topic", "sector-topic", "all"])
LEVEL = click.Choice(["company", "industry", "sector", "topic", "topic-group", "company-topic", "sector-topic"])
TOPIC_HELP = ("Only this topic (the topic head's labels, any case, e.g. 'legal | regulation'; a topic group as "
              "group:NAME, e.g. group:macro).")
BY_HELP = ("Alerts from: entity = company/industry/sector (default; with --topic: the topic levels), topic, "
           "topic-group, company-topic, sector-topic, or all.")


@click.group("finance", cls=DomainGroup)
def group() -> None:
    """Financial sentiment monitoring: which companies turn negative, when, and why."""


def default_bundle() -> Path:
    return repo_data_dir() / "models" / DEFAULT_BUNDLE_NAME


def feed_options(f):
    """Encoding, column names and monitoring thresholds, shared by score / monitor."""
    opts = [
        click.option("--encoding", default="utf-8", show_default=True,
                     help="Text encoding of FILE (e.g. latin-1, cp1252, utf-16); a UTF-8 BOM is fine."),
        click.option("--text-col", default="text", show_default=True, help="Column holding the item text."),
        click.option("--time-col", default="", help="Timestamp column (default: auto-detect created_at, timestamp, date ...)."),
        click.option("--id-col", default="", help="Item id column (default: auto-detect id, id_str ...; else a hash)."),
        click.option("--source-col", default="", help="Source column (default: auto-detect; else the file name)."),
        click.option("--ticker-col", default="", help="The feed's own ticker column, used as a hint only."),
        click.option("--resolution", type=click.Choice(["day", "hour"]), default="day", show_default=True),
        click.option("--window", type=int, default=20, show_default=True, help="Trailing periods for the robust z-score."),
        click.option("--min-volume", type=int, default=10, show_default=True, help="Items a period needs to alert."),
        click.option("--z", "z_threshold", type=float, default=3.0, show_default=True, help="Robust z-score to alert."),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                     help="FinanceConfig JSON; command-line options given explicitly override it."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def model_options(f):
    opts = [
        click.option("--bundle", type=click.Path(file_okay=False), default=None,
                     help=f"Sentiment bundle (default: data/models/{DEFAULT_BUNDLE_NAME})."),
        click.option("--backend", type=BACKEND, default=DEFAULT_BACKEND, show_default=True),
        model_variant_option,
        click.option("--kg", "kg_path", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Finance KG Turtle file (default: data/kg/finance.ttl)."),
        kg_store_option,
        click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
                     help="Extra finance rule files/dirs (merged over the packaged rules)."),
        click.option("--fuzzy-names", is_flag=True, help="Also link fuzzy company names via the FAISS entity index."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_config(ctx: click.Context, **kw: Any):
    """FinanceConfig from --config (if any) overridden by options the user gave explicitly."""
    from kgfusion.apps.finance.config import FinanceConfig

    base = FinanceConfig.load(kw.pop("config_path")) if kw.get("config_path") else FinanceConfig()
    kw.pop("config_path", None)
    given = {k: v for k, v in kw.items()
             if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT or k not in base.to_dict()}
    return FinanceConfig.from_dict(base.to_dict() | {k: v for k, v in given.items() if k in base.to_dict()})


def _config(ctx, text_col, time_col, id_col, source_col, ticker_col, resolution, window, min_volume, z_threshold,
            config_path, fuzzy_names=False):
    cfg = build_config(ctx, text_col=text_col, time_col=time_col, id_col=id_col, source_col=source_col,
                       ticker_col=ticker_col, resolution=resolution, window=window, min_volume=min_volume,
                       z_threshold=z_threshold, config_path=config_path)
    if fuzzy_names and not cfg.fuzzy_names:
        cfg = type(cfg).from_dict(cfg.to_dict() | {"fuzzy_names": True})
    if cfg.min_history > cfg.window:
        cfg = type(cfg).from_dict(cfg.to_dict() | {"min_history": cfg.window})
    return cfg


def _monitor(cfg, bundle, backend, kg_path, rule_paths, quiet):
    from kgfusion.apps.finance.pipeline import FinanceMonitor

    try:
        bundle = Path(bundle_variant(Path(bundle) if bundle else default_bundle()))
    except KgfusionError as exc:
        raise click.ClickException(str(exc)) from exc
    if not bundle.is_dir():
        raise click.ClickException(f"sentiment bundle not found: {bundle}; build it with `kgfusion finance train` "
                                   "or pass --bundle")
    mon = FinanceMonitor.from_paths(bundle, backend=backend, config=cfg, kg_path=kg_path, rule_paths=rule_paths,
                                    progress=not quiet)
    if mon.model_name != bundle.name and not quiet:  # the registry's promoted version replaced --bundle
        from kgfusion.apps.common import registry_root

        click.echo(f"model: {mon.model_name} (promoted in the registry {registry_root()})", err=True)
    return mon


def resolve_topic(catalog, topic: str | None) -> tuple[str | None, list[str]]:
    """(kind, topic labels) of --topic in ``catalog``; BadParameter naming the allowed ones."""
    from kgfusion.core.errors import ConfigError

    if not topic:
        return None, []
    try:
        return catalog.resolve(topic)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--topic") from exc


def check_level(level: str | None, by: str, cfg, topic_kind: str | None) -> str:
    """The --by to use: a topic --level with the default --by (and no --topic) picks that level; BadParameter
    for a --level the chosen --by does not compute."""
    from kgfusion.apps.finance.pipeline import levels_for
    from kgfusion.apps.finance.timeseries import TOPIC_LEVELS

    if not level:
        return by
    if by == "entity" and topic_kind is None and level in TOPIC_LEVELS:
        return level
    levels = levels_for(by, cfg, topic_kind)
    if level not in levels:
        raise click.BadParameter(f"{level!r} is not a level of --by {by}" + (" with --topic" if topic_kind else "")
                                 + f"; those are: {', '.join(levels)}", param_hint="--level")
    return by


def write_table(frame, path: str | Path) -> Path:
    """Write a frame atomically as CSV, Parquet or JSONL by the file extension."""
    from kgfusion.core.fileio import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    frame = frame.copy()
    for col in frame.columns:  # nested values (lists, dicts) as JSON text for CSV/Parquet
        if frame[col].map(lambda v: isinstance(v, (list, dict))).any():
            frame[col] = frame[col].map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v)
    if suffix == ".csv":
        return atomic_write(path, lambda p: frame.to_csv(p, index=False))
    if suffix == ".parquet":
        return atomic_write(path, lambda p: frame.to_parquet(p, index=False))
    if suffix in (".jsonl", ".ndjson", ".json"):
        return atomic_write(path, lambda p: frame.to_json(p, orient="records", lines=True, date_format="iso",
                                                            force_ascii=False))
    raise click.BadParameter(f"{path}: use a .csv, .parquet or .jsonl file", param_hint="--out")


def _records(frame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))


# ------------------------------------------------------------------------------------------- train
@group.command()
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Bundle directory (default: runs/finance/finsent-<method>; the shipped bundle is rebuilt by "
                   "`kgfusion model train --recipe data/recipes/finsent-full.json`).")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--max-length", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=None, help="Default: 1e-3 LoRA, 5e-5 full.")
@click.option("--max-steps", type=int, default=0, help="Stop after N steps (0 = no limit).")
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--base", default="minilm", show_default=True)
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding datasets/financial_phrasebank and datasets/twitter_financial_news (default: data/).")
@click.option("--no-onnx", is_flag=True, help="Skip the ONNX int8 export.")
@click.option("--quiet", is_flag=True)
@json_option
def train(method, out_dir, epochs, batch_size, max_length, lr, max_steps, seed, base, data_dir, no_onnx, quiet, as_json):
    """Rebuild the sentiment bundle: MiniLM (LoRA or full) on PhraseBank 50-agree + Twitter Financial News."""
    from kgfusion.apps.finance.train import FinanceData, train_finsent
    from kgfusion.core.commands import rebuild_command
    from kgfusion.core.finetune import TrainConfig

    data = FinanceData.default(data_dir or repo_data_dir())
    data.seed = seed
    out = out_dir or Path(f"runs/finance/finsent-{method}")
    config = TrainConfig(method=method, base=base, epochs=epochs, batch_size=batch_size, max_length=max_length,
                         lr=lr, max_steps=max_steps, seed=seed)
    result = train_finsent(config, data, out, progress=not quiet and not as_json,
                           command=rebuild_command(click.get_current_context()), onnx=not no_onnx)
    m = result["metrics"]
    text = (f"bundle written: {result['bundle']} (onnx: {result['onnx']})\n"
            + "\n".join(f"  {k:<36} {v:.4f}" for k, v in m.items() if isinstance(v, float)))
    emit(result, as_json, text)


# ---------------------------------------------------------------------------------------- evaluate
@group.command()
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), default=None,
              help=f"Bundle to evaluate (default: data/models/{DEFAULT_BUNDLE_NAME}).")
@click.option("--backend", type=BACKEND, default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--rules/--no-rules", "with_rules", default=True, show_default=True,
              help="Also report the model fused with the finance rule base.")
@json_option
def evaluate(bundle, backend, data_dir, with_rules, as_json):
    """Accuracy / macro-F1 on the held-out PhraseBank 50-agree, its all-agree subset and Twitter test sets."""
    from kgfusion.apps.finance.train import FinanceData, evaluate_finsent
    from kgfusion.core.bundle import resolve_backend

    bundle = Path(bundle) if bundle else default_bundle()
    backend = resolve_backend(bundle, backend)
    result = evaluate_finsent(bundle, FinanceData.default(data_dir or repo_data_dir()), backend=backend,
                              with_rules=with_rules)
    lines = [f"{bundle.name} ({backend})  FinBERT published accuracy: 0.86 (50-agree) / 0.97 (all-agree)"]
    for kind in ("model", "fused"):
        for name, m in result.get(kind, {}).items():
            lines.append(f"  {kind:<6} {name:<22} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  n={m['n']}")
    emit(result, as_json, "\n".join(lines))


# ------------------------------------------------------------------------------------------- score
@group.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@feed_options
@model_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write scored items (.csv/.parquet/.jsonl).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
              help="Rejected rows CSV (default: <out or FILE>.rejects.csv when there are rejects).")
@click.option("--limit", type=int, default=None, help="Only the first N items (quick runs).")
@click.option("--topic", default=None, help=TOPIC_HELP + " Needs a bundle with a topic head.")
@engine_option
@shard_size_option(256, "Items")
@restart_option
@json_option
@click.pass_context
def score(ctx, file, encoding, text_col, time_col, id_col, source_col, ticker_col, resolution, window, min_volume,
          z_threshold, config_path, bundle, backend, kg_path, rule_paths, fuzzy_names, quiet, out, rejects_path, limit,
          topic, engine, shard_size, restart, as_json):
    """Score and link the items of FILE (no database): label, score = P(pos) - P(neg), topic (bundles with a
    topic head), companies, evidence.

    Rejected rows go to --rejects with file, row and reason; a FILE with no usable row is an error (exit 1).
    """
    from itertools import chain

    from kgfusion.apps.finance.batch import model_settings, score_feed
    from kgfusion.apps.finance.ingest import FeedStream, no_items_error
    from kgfusion.core.batch_engine import chunked, dir_fingerprint
    from kgfusion.core.data import write_rejects

    cfg = _config(ctx, text_col, time_col, id_col, source_col, ticker_col, resolution, window, min_volume,
                  z_threshold, config_path, fuzzy_names)
    if out and Path(out).suffix.lower() not in (".csv", ".parquet", ".jsonl", ".ndjson", ".json"):
        raise click.BadParameter(f"{out}: use a .csv, .parquet or .jsonl file", param_hint="--out")
    feed = FeedStream(file, cfg, limit=limit, encoding=encoding)  # streamed shard by shard, never held whole
    shards = chunked(feed, shard_size)
    head = next(shards, None)  # a FILE without any item fails here, before the model loads

    def write_feed_rejects() -> Path | None:
        if not feed.rejects:
            return None
        return write_rejects(feed.rejects, Path(rejects_path or f"{out or file}.rejects.csv"))

    if head is None:
        raise no_items_error(file, feed.result(), write_feed_rejects())
    mon = _monitor(cfg, bundle, backend, kg_path, rule_paths, quiet or as_json)
    if topic and not mon.scorer.has_topics:
        raise click.BadParameter(f"the bundle {bundle or default_bundle()} has no topic head (sentiment only); "
                                 "use one trained with topics, e.g. finsent-topics", param_hint="--topic")
    _, wanted = resolve_topic(mon.topics, topic)
    settings = {"encoding": encoding, "limit": limit, "config": cfg.to_dict()}
    if mon.source is not None and out:
        from kgfusion.apps.common import promoted_bundle

        settings |= model_settings(mon.source, lambda b: dir_fingerprint(promoted_bundle(b).path))
    run = score_feed(mon, chain([head], shards), source=mon.source, feed_path=file, out=out, topics=wanted,
                     engine=engine, shard_size=shard_size, restart=restart, settings=settings,
                     progress=not (quiet or as_json))
    rej = write_feed_rejects()
    frame, scored = run.frame, run.scored
    summary = feed.summary() | {"out": out, "rejects_path": str(rej) if rej else None, "labels": run.labels,
                                "topic_head": mon.scorer.has_topics, "topics": run.topics, "model": mon.model_name}
    if topic:
        summary |= {"topic": topic, "topic_items": run.kept}
    if as_json:
        emit({"summary": summary, "items": [] if out else _records(frame.drop(columns=["model_probs"]))}, True)
        return
    lines = [f"{scored} items scored, {summary['rejected']} rejected"
             + (f" (see {rej})" if rej else "") + (f"; {run.kept} of topic {topic!r}" if topic else "")
             + (f"; written to {out}" if out else "")]
    if not out:
        show_topic = bool(run.topics)
        for r in frame.head(50).itertuples(index=False):
            topic_col = f"{str(r.topic or '-')[:24]:<24} " if show_topic else ""
            lines.append(f"{r.label:<8} {r.score:+.3f}  {topic_col}{','.join(r.tickers) or '-':<14} {r.text[:90]}")
    emit(summary, False, "\n".join(lines))


# ----------------------------------------------------------------------------------------- monitor
@group.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="DuckDB file (created if missing).")
@feed_options
@model_options
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None,
              help="Rejected rows CSV (default: <db>.rejects.csv when there are rejects).")
@click.option("--limit", type=int, default=None, help="Only the first N items (quick runs).")
@click.option("--rescore", is_flag=True, help="Score items already in the database again.")
@click.option("--top", type=int, default=5, show_default=True, help="Alerts to print.")
@click.option("--by", type=BY, default="entity", show_default=True, help=BY_HELP)
@click.option("--topic", default=None, help="Print only alerts about this topic. " + TOPIC_HELP)
@engine_option
@shard_size_option(None, "Items", " Default: 2048 (or $KGFUSION_FINANCE_CHUNK); each shard is committed to "
                   "--db as it finishes.")
@json_option
@click.pass_context
def monitor(ctx, file, db, encoding, text_col, time_col, id_col, source_col, ticker_col, resolution, window,
            min_volume, z_threshold, config_path, bundle, backend, kg_path, rule_paths, fuzzy_names, quiet,
            rejects_path, limit, rescore, top, by, topic, engine, shard_size, as_json):
    """Ingest FILE into --db (score, link, store; re-runs do not double-count), then detect alerts.

    Rejected rows go to --rejects with file, row and reason; a FILE with no usable row is an error (exit 1).
    """
    from kgfusion.apps.finance.ingest import check_feed

    cfg = _config(ctx, text_col, time_col, id_col, source_col, ticker_col, resolution, window, min_volume,
                  z_threshold, config_path, fuzzy_names)
    check_feed(file, cfg, encoding)  # a binary file or a missing column fails before the model loads
    mon = _monitor(cfg, bundle, backend, kg_path, rule_paths, quiet or as_json)
    resolve_topic(mon.topics, topic)  # an unknown topic fails before the feed is scored
    s = mon.monitor(file, db, rejects_path=rejects_path, limit=limit, rescore=rescore, top=top, encoding=encoding,
                    by=by, topic=topic, engine=engine, shard_size=shard_size)
    topics = (", ".join(f"{t} {n}" for t, n in list(s.topics.items())[:8]) if s.topics
              else "none (the model has no topic head)" if not s.topic_head else "none")
    text = (f"{s.items} items ({s.new_items} new, {s.skipped_existing} already stored), {s.rejected} rejected"
            + (f" -> {s.rejects_path}" if s.rejects_path else "")
            + f"\n{s.linked_items} items linked to companies ({s.mentions} mentions); "
            f"{s.items_per_s:.0f} items/s; {s.seconds:.1f} s total\ntopics: {topics}\n"
            + (f"note: {s.note}\n" if s.note else "")
            + f"{s.alerts} alerts" + (f" about {topic!r}" if topic else "") + "; top:\n"
            + _alert_lines(s.top_alerts))
    emit(s.to_dict(), as_json, text)


def _alert_lines(alerts: list[dict[str, Any]]) -> str:
    lines = []
    for a in alerts:
        topic = f" topic={a['topic']!r}" if a.get("topic") else ""
        width = 44 if a.get("topic") else 28
        lines.append(f"  {str(a['period'])[:16]:<16} {a['level']:<8} {str(a['name'])[:width]:<28} z={a['z']:6.1f} "
                     f"n={a['volume']:<4} neg={a['negative_share']:.2f} (base {a['baseline_share']:.2f}){topic}")
        for ev in (a.get("evidence") or [])[:1]:
            rules = [e["source"] for e in ev.get("evidence", []) if e["kind"] == "rule"]
            ev_topic = f" topic={ev['topic']!r}" if ev.get("topic") else ""
            lines.append(f"      e.g. {ev['score']:+.2f} {ev['text'][:80]!r} rules={rules[:3]}{ev_topic}")
    return "\n".join(lines) or "  (none)"


# ------------------------------------------------------------------------------------------ alerts
@group.command()
@click.option("--db", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--resolution", type=click.Choice(["day", "hour"]), default="day", show_default=True)
@click.option("--window", type=int, default=20, show_default=True)
@click.option("--min-volume", type=int, default=10, show_default=True)
@click.option("--z", "z_threshold", type=float, default=3.0, show_default=True)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--top", type=int, default=20, show_default=True)
@click.option("--level", type=LEVEL, default=None,
              help="Only this level (a topic level with the default --by computes that level).")
@click.option("--entity", default=None, help="Ticker, name or URI to filter on (e.g. AAPL; also its company-topic alerts).")
@click.option("--by", type=BY, default="entity", show_default=True, help=BY_HELP)
@click.option("--topic", default=None, help="Only alerts about this topic. " + TOPIC_HELP)
@click.option("--prices", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Prices CSV (ticker, Date, Adj Close) for a descriptive next-day return study.")
@click.option("--kg", "kg_path", type=click.Path(exists=True, dir_okay=False), default=None)
@kg_store_option
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write alerts (.csv/.parquet/.jsonl).")
@click.option("--drift", is_flag=True, help="Instead: per-day drift figures (labels, confidence, embedding centroid "
              "vs the training reference; computed and stored for days not stored yet) and drift alerts.")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="With --drift: the reference JSON (`finance drift-reference`; default: the one cached beside --bundle).")
@click.option("--bundle", type=click.Path(file_okay=False), default=None,
              help=f"With --drift: the bundle whose reference to use (default: data/models/{DEFAULT_BUNDLE_NAME}).")
@json_option
@click.pass_context
def alerts(ctx, db, resolution, window, min_volume, z_threshold, config_path, top, level, entity, by, topic, prices,
           kg_path, out, drift, reference, bundle, as_json):
    """Negative-sentiment spikes in --db (robust z of the negative share), with their top evidence items.

    --by topic | topic-group | company-topic | sector-topic | all: spikes per topic (needs items scored by a
    bundle with a topic head); every alert names the topic that spiked and cites its items.
    """
    if drift:  # drift alerts: apps/finance/drift.py
        from kgfusion.apps.finance.drift_cli import drift_report

        return drift_report(db, reference, bundle, out, as_json)
    from kgfusion.apps.finance.pipeline import alerts_from_store, store_catalog
    from kgfusion.apps.finance.store import FinanceStore
    from kgfusion.apps.finance.topics import TopicCatalog

    cfg = build_config(ctx, resolution=resolution, window=window, min_volume=min_volume, z_threshold=z_threshold,
                       config_path=config_path)
    if cfg.min_history > cfg.window:
        cfg = type(cfg).from_dict(cfg.to_dict() | {"min_history": cfg.window})
    base = TopicCatalog.default()
    if kg_path:
        base = TopicCatalog.from_graph(load_kg(kg_path))
    with FinanceStore(db, read_only=True) as store:
        catalog = store_catalog(store, base)
        kind, _ = resolve_topic(catalog, topic)
        by = check_level(level, by, cfg, kind)
        table = alerts_from_store(store, cfg, top=None if prices else top, level=level, entity=entity, by=by,
                                  topic=topic, topics=catalog)
    result: dict[str, Any] = {"total": int(table.attrs.get("total", len(table)))}
    if table.attrs.get("note"):
        result["note"] = table.attrs["note"]
    if prices:
        result["event_study"] = _event_study(table, prices, kg_path, cfg)
    table = table.head(top)
    if out:
        write_table(table, out)
    result["alerts"] = _records(table)
    text = ((f"note: {result['note']}\n" if result.get("note") else "")
            + f"{result['total']} alerts" + (f" about {topic!r}" if topic else "") + f"; top {len(table)}:\n"
            + _alert_lines(result["alerts"]))
    if prices:
        es = result["event_study"]
        text += ("\nevent study (descriptive, company alerts): " + json.dumps(
            {k: (round(v, 5) if isinstance(v, float) else v) for k, v in es.items()}, indent=1))
    emit(result, as_json, text)


def _event_study(table, prices, kg_path, cfg) -> dict[str, Any]:
    from kgfusion.apps.finance.eventstudy import next_day_returns, read_prices, summarize
    from kgfusion.apps.finance.linking import CompanyCatalog
    catalog = CompanyCatalog.from_graph(load_kg(kg_path or repo_data_dir() / "kg" / "finance.ttl"), cfg)

    def entity_of(ticker: str) -> str | None:
        c = catalog.by_ticker.get(ticker.upper())
        return c.uri if c else None

    events = next_day_returns(table, read_prices(prices), entity_of)
    return summarize(events)


def _build_corpus(data_dir: Path):
    from kgfusion.apps.finance.corpus import build_finance_corpus

    return build_finance_corpus(data_dir)


group.add_command(pretrain_corpus_command("finance", _build_corpus))
group.add_command(drift_reference)

from kgfusion.apps.finance.lexical_cli import lexical_head  # noqa: E402

group.add_command(lexical_head)

from kgfusion.apps.finance.corrections_cli import correct  # noqa: E402  (analysts' corrections, issue 16)

group.add_command(correct)
