"""`make bench`: how fast each stage of the workbook runs, next to the limit on this machine.

Every stage is measured twice in the same run, on the same data: through the workbook's public
functions (what the notebooks call) and as the plainest native equivalent (librdkafka for the
producer, Spark batch jobs for the rest). The ratio workbook rate / limit rate says how much the
workbook's guarantees and plumbing cost. Both sides are timed wall-clock around the call, the
workbook's bookkeeping (health checks, counts, watermarks) included, because users wait for it.
Each run writes to a data folder, topics, buckets and schemas of its own and removes them after.

Also measured: the services' cold start (after `down`, so this restarts the stack), Spark
start-up for a kernel and, with `--notebooks`, every notebook in connect and in classic mode.
Results: a table on the terminal, `<state_dir>/bench/latest.json` and `<state_dir>/bench/ratios.png`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lakehouse_helpers.bench.sandbox import Sandbox
from lakehouse_helpers.bench.scoreboard import Stage, format_table, plot_ratios
from lakehouse_helpers.runtime.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["main", "scoreboard", "write_results"]


def _stages(spark, box: Sandbox, events: int, small_files: int) -> list[Stage]:
    from lakehouse_helpers.bench.file_stages import autoloader_stages
    from lakehouse_helpers.bench.kafka_stages import produce_stage, stream_stage, warm_up
    from lakehouse_helpers.bench.lake_stages import bronze_stage, export_stage, gold_stage, silver_stage
    from lakehouse_helpers.pipeline.events import generate

    stages: list[Stage] = []

    def done(stage: Stage) -> None:
        stages.append(stage)
        log.info(f"  {stage.name:30s} workbook {stage.workbook.rate:10,.0f}  limit {stage.limit.rate:10,.0f}  "
                 f"ratio {stage.ratio:5.2f}  {stage.unit}")

    batch = generate(events=events)  # the workbook's default faults: malformed, invalid, duplicates
    done(produce_stage(box, batch))
    warm_up(spark, box)
    done(stream_stage(spark, box, len(batch.messages)))
    # Each stage reads what the workbook's previous one wrote, as the notebooks do.
    for stage in (export_stage, bronze_stage, silver_stage, gold_stage):
        done(stage(spark, box))
    for stage in autoloader_stages(spark, box, events, small_files):
        done(stage)
    return stages


def scoreboard(settings: Settings, events: int, small_files: int = 1000, keep: bool = False) -> list[Stage]:
    """Every stage at `events` order events (Auto Loader: that many rows in 10 files of each
    format, plus `small_files` JSON files of 10 rows). `keep` leaves the run's data for inspection."""
    from lakehouse_helpers.runtime.spark import get_spark

    spark = get_spark(settings)
    box = Sandbox.create(settings)
    log.info(f"scoreboard for {events:,} events in {box.root} (topic {box.workbook.kafka_topic}):")
    try:
        return _stages(spark, box, events, small_files)
    finally:
        if not keep:
            box.cleanup(spark)


def write_results(settings: Settings, figures: dict, stages: list[Stage], events: int) -> Path:
    """`latest.json` with the start-up figures and the scoreboard; `ratios.png` when there is one."""
    out = settings.state_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    data = {**figures}
    if stages:
        data["events"] = events
        data["scoreboard"] = [s.as_dict() for s in stages]
        plot_ratios(stages, out / "ratios.png", f"Workbook rate / limit rate, {events:,} events (1.0 = as fast)")
    (out / "latest.json").write_text(json.dumps(data, indent=2))
    return out


def main(settings: Settings, events: int = 100_000, small_files: int = 1000, notebooks: bool = False,
         startup: bool = True, keep: bool = False) -> int:
    from lakehouse_helpers.bench import startup as start_up

    figures: dict = start_up.startup(settings) if startup else {}
    stages = scoreboard(settings, events, small_files, keep) if events else []
    if notebooks:
        figures.update(start_up.notebooks(settings, figures.get("services_cold_start_s")))
    out = write_results(settings, figures, stages, events)
    print()
    for k, v in figures.items():
        print(f"{k:32s} {v}")
    if stages:
        print(f"\n{format_table(stages)}\n\nratios: {out / 'ratios.png'}")
    print(f"written to {out / 'latest.json'}")
    return 0
