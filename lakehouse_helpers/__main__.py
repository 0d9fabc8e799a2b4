"""python -m lakehouse_helpers services up|down|status | doctor | run | reset | bench | deploy"""

from __future__ import annotations

import argparse
import ast
import logging
import re
import shlex
import sys

from lakehouse_helpers.runtime.settings import SettingsError, load_settings


def _parse_value(text: str):
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text.strip()):  # EVENTS=100,000 is a number, not a tuple (100, 0)
        return int(text.replace(",", ""))
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_parameters(pairs: list[list[str]], words: str = "") -> dict:
    """`-p NAME VALUE` pairs plus `--params "name=value name2='a b'"` (shell-like words)."""
    params = {name: _parse_value(value) for name, value in pairs}
    for word in shlex.split(words or ""):
        name, sep, value = word.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(
                f"{word!r} in --params (PARAMS) is not name=value, e.g. PARAMS=\"mode=live live_seconds=60\"")
        params[name] = _parse_value(value)
    return params


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    svc = sub.add_parser("services", help="start, stop or check the embedded services")
    svc.add_argument("action", choices=["up", "down", "status"])
    svc.add_argument("names", nargs="*", help="kafka, s3, metastore, spark (default: all)")
    sub.add_parser("doctor", help="check packages, Java, jars and services")
    sub.add_parser("reset", help="the data back to before notebook 01; keeps the virtualenv, jars, services, runs")
    run = sub.add_parser("run", help="run the notebooks in order with papermill")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--params", default="", metavar="'NAME=VALUE ...'", help="more parameters as shell-like words")
    run.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 01")
    bench = sub.add_parser("bench", help="start-up costs, and each stage's rate next to its native limit")
    bench.add_argument("--events", type=int, default=100_000, help="scoreboard size in order events (0: skip it)")
    bench.add_argument("--small-files", type=int, default=1000, help="small JSON files for Auto Loader (0: skip)")
    bench.add_argument("--skip-startup", action="store_true",
        help="keep the running services: no cold start, no Spark start")
    bench.add_argument("--notebooks", action="store_true",
        help="also run every notebook in connect and in classic mode")
    bench.add_argument("--keep", action="store_true", help="keep the run's tables, topics and buckets for inspection")
    nbs = sub.add_parser("notebooks",
        help="check committed notebooks are clean, strip outputs, or refresh checked outputs")
    nbs.add_argument("action", choices=["check", "refresh", "strip"])
    nbs.add_argument("run_dir", nargs="?", help="executed notebooks to take checked outputs from (refresh)")
    dep = sub.add_parser("deploy", help="deploy notebooks 00, 05-07 as one job to a Databricks workspace")
    dep.add_argument("--run", action="store_true", help="start the job and follow it to the end")
    dep.add_argument("--dry-run", action="store_true", help="print every request a deploy would send; send none")
    dep.add_argument("-v", "--verbose", action="store_true", help="log the SDK's requests (the token is never logged)")
    return parser


def _console_logging() -> None:
    """The package's progress lines (services started, notebooks run) as plain lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("lakehouse_helpers")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _console_logging()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"Settings error: {exc}", file=sys.stderr)
        return 2

    from lakehouse_helpers.runtime import services

    commands = {"services": _services, "doctor": _doctor, "run": _run, "deploy": _deploy, "bench": _bench,
                "reset": _reset, "notebooks": lambda _settings, a: _notebooks(a)}
    try:
        return commands[args.command](settings, args)
    except services.ServiceError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1


def _services(settings, args) -> int:
    from lakehouse_helpers.runtime import services

    if args.action == "up":
        services.up(settings, args.names or None)
    elif args.action == "down":
        services.down(settings, args.names or None)
    else:
        bad = 0
        for st in services.status(settings):
            owner = (f"pid {st.pid}" if st.managed else "running, not started by this project" if st.healthy
                     else "stopped")
            print(f"{'UP  ' if st.healthy else 'DOWN'}  {st.name:10s} {st.endpoint:45s} {owner}; {st.detail}")
            bad += not st.healthy
        return 1 if bad else 0
    return 0


def _reset(settings, args) -> int:
    from lakehouse_helpers.reset import ResetRefused, reset

    try:
        report = reset(settings)
    except ResetRefused as exc:
        print(f"Nothing was reset: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0


def _doctor(settings, args) -> int:
    from lakehouse_helpers.doctor import format_checks, run_checks

    checks = run_checks(settings)
    print(format_checks(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


def _bench(settings, args) -> int:
    from lakehouse_helpers.bench import main as bench_main

    return bench_main(settings, events=args.events, small_files=args.small_files, notebooks=args.notebooks,
                      startup=not args.skip_startup, keep=args.keep)


def _run(settings, args) -> int:
    from lakehouse_helpers.notebook.runner import RunInputError, format_summary, run_kind, run_notebooks

    try:
        params = parse_parameters(args.parameter, args.params)
        out_dir, results = run_notebooks(settings, params, args.only)
    except (RunInputError, ValueError) as exc:
        print(f"Nothing was run: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_summary(results))
    kind = run_kind(out_dir)
    note = {k: f" (a {k} run: runs/latest still points at the last complete run)"
            for k in ("partial", "failed", "interrupted")}.get(kind, "")
    print(f"\nExecuted notebooks and summary.json: {out_dir}{note}")
    if (out_dir / "lineage.png").exists():
        print(f"Lineage picture: {out_dir / 'lineage.png'}")
    failed = [r for r in results if r.status != "ok"]
    if failed and failed[0].status == "interrupted":
        print(f"\nINTERRUPTED: {failed[0].notebook} (Ctrl-C)", file=sys.stderr)
        return 130  # the shell's code for a command ended by SIGINT
    if failed:
        print(f"\nFAILED: {failed[0].notebook}: {failed[0].error}", file=sys.stderr)
        return 1
    return 0


def _deploy(settings, args) -> int:
    import logging

    from lakehouse_helpers.deploy import DeployConfig, DeployError, deploy

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("databricks.sdk").setLevel(logging.DEBUG)
    try:
        ok = deploy(settings, DeployConfig.from_env(), run=args.run, dry_run=args.dry_run)
    except (DeployError, ValueError) as exc:
        print(f"Deploy failed: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _notebooks(args) -> int:
    from pathlib import Path

    from lakehouse_helpers.notebook import tools as nbtools
    from lakehouse_helpers.notebook.runner import NOTEBOOKS_DIR

    if args.action == "refresh":
        if not args.run_dir:
            print("refresh needs the folder of an executed run, e.g. .lakehouse/runs/latest", file=sys.stderr)
            return 2
        changed = nbtools.refresh(NOTEBOOKS_DIR, Path(args.run_dir))
        print("updated: " + (", ".join(changed) or "nothing"))
        return 0
    if args.action == "strip":
        changed = nbtools.strip(NOTEBOOKS_DIR)
        print("stripped: " + (", ".join(changed) or "nothing (already clean)"))
        return 0
    bad = 0
    for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        for problem in nbtools.problems(path):
            print(f"{path.name}: {problem}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
