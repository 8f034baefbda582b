"""``kit batch`` and ``kit.tutorial.batch``: one notebook over a grid of parameters with papermill, a folder per run.

The plan (notebook, typed values, run ids, cards, threads) is checked whole before anything is written;
the runs then go through ``kit.tutorial.execute`` here or in worker processes, and ``results.csv`` /
``results.json`` are rewritten as each ends. What a person sees is in batch_main's help below.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import difflib
import hashlib
import io
import itertools
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kit.errors import KitError
from kit.tutorial.parameters import OVERRIDES, route, run_outputs
from kit.fmt import jsonable
from kit.i18n import N_, _

VISIBLE_DEVICES = "visible_devices"  # the notebook parameter --devices sets, one card per run
_NO_LITERAL = object()  # a default papermill shows that is not a Python literal (an expression)
_SCALARS = (str, int, float, bool, type(None))


class BatchError(KitError):
    pass


@dataclass(frozen=True)
class Run:
    run_id: str
    parameters: dict[str, Any]  # as given (typed); what the id is made from


@dataclass(frozen=True)
class SweepPlan:
    notebook: Path
    out: Path
    swept: list[str]  # names given more than one value: the table's parameter columns
    runs: list[Run]
    defaults: dict[str, Any]  # the notebook's parameters and their defaults
    parallel: int
    devices: list[str]
    threads: int | None  # OMP_NUM_THREADS of each run's kernel when runs share the cores


# ---------------------------------------------------------------- the plan: checked before anything runs

def resolve_notebook(notebook: str | Path, lang: str | None = None) -> Path:
    """A path, or the name of one of the kit's notebooks (``20_lora_sft``) in edition ``lang`` (None: the kit's language)."""
    from kit.i18n import language
    from kit.tutorial.values import check_notebook, notebook_dir

    lang = lang or language()
    path = Path(notebook).expanduser()
    if os.path.lexists(path):  # a folder, a file that is no notebook, one that cannot be read: one message each
        return check_notebook(path).resolve()

    packaged = notebook_dir() / lang / (path.name if path.suffix == ".ipynb" else f"{path.name}.ipynb")
    if len(path.parts) == 1 and packaged.is_file():
        return packaged
    raise BatchError(_("notebook {notebook!r} not found: give a path to an .ipynb file or the name of one of the kit's notebooks "
                       "({names})").format(notebook=str(notebook),
                                           names=", ".join(sorted(p.stem for p in (notebook_dir() / lang).glob("*.ipynb")))))


def notebook_parameters(path: Path) -> dict[str, Any]:
    """``{name: default}`` from the notebook's parameters cell, as papermill's inspection reads it."""
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)
    out: dict[str, Any] = {}
    try:
        found = pm.inspect_notebook(str(path))
    except Exception as exc:  # JSON that nbformat or papermill cannot read as a notebook: the file, not the kit
        raise BatchError(_("notebook {path} is not a Jupyter notebook papermill can read ({error})").format(
            path=path, error=f"{type(exc).__name__}: {exc}")) from None
    for name, info in found.items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[name] = _NO_LITERAL
    return out


def _literal(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def type_value(name: str, raw: Any, default: Any) -> Any:
    """A command-line value typed as the notebook's default; a None default as config key ``name``, else a literal."""
    from kit.config import ALIASES, KEYS, coerce

    key = ALIASES.get(name, name)
    if (default is None or default is _NO_LITERAL) and key in KEYS:
        value, problem = coerce(name, raw, KEYS[key][1])
        if problem:
            raise BatchError(f"-p {problem}")
        return value
    if not isinstance(raw, str):
        return raw  # from Python, already typed
    if default is None or default is _NO_LITERAL:
        return _literal(raw)
    kind = type(default)
    if kind is str:
        return raw
    if kind is bool:
        word = raw.strip().lower()
        if word in {"true", "yes", "on", "1", "false", "no", "off", "0"}:
            return word in {"true", "yes", "on", "1"}
        raise BatchError(_("-p {name}: {raw!r} is not a boolean (the notebook's default is {default!r}); use true or false").format(
            name=name, raw=raw, default=default))
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            message = (N_("-p {name}: {raw!r} is not an integer (the notebook's default is {default!r})") if kind is int else
                       N_("-p {name}: {raw!r} is not a number (the notebook's default is {default!r})"))
            raise BatchError(_(message).format(name=name, raw=raw, default=default)) from None
    value = _literal(raw)
    if isinstance(value, kind):
        return value
    if kind in (list, tuple):  # `-p overrides lora_rank=8`: one item
        return kind([raw])
    raise BatchError(_("-p {name}: {raw!r} is not a {kind} like the notebook's default {default!r}").format(
        name=name, raw=raw, kind=kind.__name__, default=default))


def _unknown(names: Sequence[str], defaults: Mapping[str, Any], notebook: Path) -> str:
    from kit.config import KEYS

    pool = list(defaults) + (list(KEYS) if OVERRIDES in defaults else [])
    hints = [_("did you mean {key}?").format(key=close[0]) for n in names if (close := difflib.get_close_matches(n, pool, n=1))]
    via = _("; config keys (kit keys) go through its `{overrides}`").format(overrides=OVERRIDES) if OVERRIDES in defaults else ""
    return _("{notebook} has no parameter {names}{hints}; its parameters: {parameters}{via}").format(
        notebook=notebook.name, names=", ".join(map(repr, names)), hints=" (" + " ".join(hints) + ")" if hints else "",
        parameters=", ".join(defaults) or _("none (no cell tagged parameters)"), via=via)


def run_id(notebook: Path, parameters: Mapping[str, Any], swept: Sequence[str]) -> str:
    """Readable from the swept values, unique from a hash of every parameter and the notebook's name."""
    def short(v: Any) -> str:
        return ",".join(map(short, v)) if isinstance(v, (list, tuple)) else str(v)

    readable = ",".join(f"{n}={short(parameters[n])}" for n in sorted(swept)) or "run"
    readable = re.sub(r"[^A-Za-z0-9._=+,-]+", "_", readable)[:80]
    digest = hashlib.sha1(json.dumps([notebook.stem, jsonable(parameters)], sort_keys=True).encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def make_plan(notebook: str | Path, parameters: Mapping[str, Any], out: str | Path, parallel: int | None = None,
              devices: str | Sequence[Any] | None = None, lang: str | None = None, kernel_name: str | None = None) -> SweepPlan:
    """Every check a person's mistake can fail, before anything is written or run."""
    from kit.config import ALIASES, KEYS
    from kit.tutorial.values import check_folder, check_kernel

    path = resolve_notebook(notebook, lang)
    check_kernel(path, kernel_name)  # else every run fails alike with NoSuchKernel (and papermill cannot read its parameters)
    out = check_folder(out, "--out")  # a file there or on the way, or no write permission: said now, not half way
    defaults = notebook_parameters(path)
    unknown = [n for n in parameters if n not in defaults and not (OVERRIDES in defaults and ALIASES.get(n, n) in KEYS)]
    if unknown:
        raise BatchError(_unknown(unknown, defaults, path))
    grid: dict[str, list[Any]] = {}
    for name, given in parameters.items():
        values = given if isinstance(given, list) else [given]
        if not values:
            raise BatchError(_("-p {name}: no value given").format(name=name))
        grid[name] = [type_value(name, v, defaults.get(name)) for v in values]
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",")]
    cards = [str(d) for d in (devices or [])]
    if cards:
        if any(not c for c in cards) or len(set(cards)) != len(cards):
            raise BatchError(_("--devices {devices}: give distinct card numbers separated by commas (0,1,2,3)").format(
                devices=",".join(cards)))
        if VISIBLE_DEVICES not in defaults:
            raise BatchError(_("--devices: {notebook} has no `{parameter}` parameter to give each run its card").format(
                notebook=path.name, parameter=VISIBLE_DEVICES))
        if VISIBLE_DEVICES in grid:
            raise BatchError(_("--devices sets {parameter} for each run; do not also give -p {parameter}").format(parameter=VISIBLE_DEVICES))
    if parallel is not None and parallel < 1:
        raise BatchError(_("--parallel {n}: give 1 or more runs at once").format(n=parallel))
    parallel = parallel or len(cards) or 1
    if cards:
        parallel = min(parallel, len(cards))  # never two runs on one card
    swept = [n for n, vs in grid.items() if len(vs) > 1]
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    runs = [Run(run_id(path, combo, swept), combo) for combo in combos]
    threads = None
    if parallel > 1:  # runs share the cores: each kernel (and the torchrun it starts) gets its part
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // parallel)
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = min(threads, max(1, int(os.environ["OMP_NUM_THREADS"])))
    return SweepPlan(path, out.resolve(), swept, runs, defaults, parallel, cards, threads)


def papermill_parameters(plan: SweepPlan, run: Run, card: str | None) -> dict[str, Any]:
    """What the notebook is given: config keys it lacks go into its overrides; output_dir into the run's folder."""
    defaults = {k: v for k, v in plan.defaults.items() if k != OVERRIDES}
    params, config, _unknown = route(run.parameters, defaults, plan.defaults.get(OVERRIDES))  # make_plan refused unknowns
    if config or OVERRIDES in run.parameters:
        params[OVERRIDES] = config
    for name, place in run_outputs(plan.out / run.run_id).items():
        if name in plan.defaults and name not in params:
            params[name] = place
    if card is not None:
        params[VISIBLE_DEVICES] = card
    return params


def command_line(notebook: str | Path, parameters: Mapping[str, Any], out: str | Path, parallel: int | None = None,
                 devices: str | None = None, lang: str | None = None) -> str:
    """The ``kit batch`` command that runs the same sweep as ``kit.tutorial.batch`` with these arguments."""
    import shlex

    def word(v: Any) -> str:
        return shlex.quote(v if isinstance(v, str) else repr(v))

    args = [f"-p {n} " + " ".join(map(word, v if isinstance(v, list) else [v])) for n, v in parameters.items()]
    args += [f"--out {word(str(out))}"] + ([f"--parallel {parallel}"] if parallel else []) + ([f"--devices {devices}"] if devices else [])
    args += [f"--lang {lang}"] if lang else []
    return " ".join(["kit batch", word(str(notebook)), *args])


# ---------------------------------------------------------------- one run (in this process or a worker)

def execute_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one notebook; never raises for a failing notebook: the sweep records it and goes on."""
    from kit.tutorial import values as nb

    saved = {k: os.environ.get(k) for k in task["env"]}
    os.environ.update(task["env"])  # the kernel papermill starts is a child of this process and inherits it
    start = time.perf_counter()
    record: dict[str, Any] = {"status": "ok", "failed_cell": None, "error": None}
    try:
        nb.execute(task["notebook"], task["output"], task["parameters"], cwd=task["cwd"],
                   kernel_name=task["kernel_name"], timeout=task["timeout"])
    except nb.NotebookError as exc:
        record.update(status="failed", failed_cell=exc.cell, error=exc.error or str(exc))
    except Exception as exc:  # a dead kernel, a cell timeout: this run failed, the others go on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    record["seconds"] = round(time.perf_counter() - start, 1)
    try:
        record["values"] = nb.read(task["output"]) if Path(task["output"]).is_file() else {}
    except nb.NotebookError:  # cut short by a dying kernel: the run has already failed, and says why
        record["values"] = {}
    failed = nb.failed_checks(record["values"]) if record["status"] == "ok" else []
    if failed:  # every cell ran, but the notebook says what it checked failed: the run did not do its job
        record.update(status="failed", error=_("the notebook reported failed checks: {checks}").format(checks="; ".join(failed)))
    return record


def _done(folder: Path, run: Run, notebook: Path) -> dict[str, Any] | None:
    from kit.tutorial.values import failed_checks

    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("values", {}), dict):
        return None
    same = record.get("parameters") == jsonable(run.parameters) and (folder / notebook.name).is_file()
    # "ok" from a kit that did not read the notebook's checks: a run whose checks failed is run again
    return record if same and record.get("status") == "ok" and not failed_checks(record.get("values") or {}) else None


# ---------------------------------------------------------------- the results table

def _row(plan: SweepPlan, run: Run, record: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run.run_id, **{n: run.parameters[n] for n in plan.swept},
                           "status": record.get("status"), "seconds": record.get("seconds")}
    for name, value in (record.get("values") or {}).items():
        if isinstance(value, _SCALARS) and name not in row:
            row[name] = value
    row.update(failed_cell=record.get("failed_cell"), error=record.get("error"),
               notebook=str(Path(run.run_id) / plan.notebook.name))
    return row


RESULTS = ("results.csv", "results.json")
RUN_RECORD = "run.json"


def write_results(folder: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """results.csv and results.json into ``folder`` (a kit.tutorial.values.KitFolder: replaced whole, recorded as the sweep's)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(dict.fromkeys(c for row in rows for c in row)))
    writer.writeheader()
    writer.writerows({c: json.dumps(v) if isinstance(v, (list, dict)) else v for c, v in row.items()} for row in rows)
    folder.write_files({"results.csv": buffer.getvalue(),
                        "results.json": json.dumps(jsonable(list(rows)), indent=1, ensure_ascii=False) + "\n"})


def format_table(rows: Sequence[Mapping[str, Any]], skip: Sequence[str] = ("error", "failed_cell", "notebook", "output_dir")) -> str:
    """The results as aligned text (numbers to 4 significant digits), failures below it; the files have every column.

    A published text that is the same in every row (a data folder) says nothing about the settings: left out.
    """
    def constant(c: str) -> bool:
        values = {json.dumps(row.get(c)) for row in rows}
        return len(rows) > 1 and len(values) == 1 and isinstance(rows[0].get(c), str) and c not in ("status", "run_id")

    columns = [c for c in dict.fromkeys(c for row in rows for c in row) if c not in skip and not constant(c)]

    def cell(v: Any) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [columns] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
    # A run failed by a check it reported has no failing cell to name.
    lines += [(_("{run}: cell {cell}: {error}") if row.get("failed_cell") is not None else _("{run}: {error}")).format(
        run=row["run_id"], cell=row.get("failed_cell"), error=row["error"]) for row in rows if row.get("error")]
    return "\n".join(lines)


# ---------------------------------------------------------------- the sweep

def run_batch(notebook: str | Path, parameters: Mapping[str, Any], out: str | Path, parallel: int | None = None,
              devices: str | Sequence[Any] | None = None, kernel_name: str | None = None, timeout: int | None = None,
              lang: str | None = None, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the sweep and return the results table, one dict per run, in sweep order.

    ``parameters``: a list is a sweep over its items, anything else a fixed value (a list-typed
    parameter's fixed value is a list of one list). Strings are typed as on the command line. ``lang``:
    the edition of a notebook given by name (None: the kit's language, kit.i18n.language()).
    """
    from tqdm.auto import tqdm

    from kit.tutorial.values import KitFolder

    if timeout is not None and timeout < 1:
        raise BatchError(_("--timeout {n}: give the seconds one cell may run, 1 or more (leave it out for no limit)").format(n=timeout))
    plan = make_plan(notebook, parameters, out, parallel, devices, lang, kernel_name)
    say = log or tqdm.write
    # Locked for the whole sweep (a second sweep into it is refused, so no run runs twice); the person's files
    # there are refused before anything is written or run, not found half way.
    with KitFolder.open(plan.out, "--out", say=lambda line: say("[batch] " + line)) as folder:
        folder.refuse_foreign([*RESULTS, *(f"{r.run_id}/{name}" for r in plan.runs for name in (RUN_RECORD, plan.notebook.name))])
        return _sweep(plan, folder, say, kernel_name, timeout)


def _sweep(plan: SweepPlan, folder: Any, say: Callable[[str], None], kernel_name: str | None, timeout: int | None) -> list[dict[str, Any]]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    records = {run.run_id: _done(plan.out / run.run_id, run, plan.notebook) or {"status": "pending"} for run in plan.runs}
    queue = [run for run in plan.runs if records[run.run_id]["status"] == "pending"]
    number = {run.run_id: f"{i}/{len(plan.runs)} {run.run_id}" for i, run in enumerate(plan.runs, 1)}

    def save() -> None:
        write_results(folder, [_row(plan, run, records[run.run_id]) for run in plan.runs])

    save()
    each = (_(", one card each ({cards})").format(cards=",".join(plan.devices)) if plan.devices else "") + (
        _(", {n} thread(s) each").format(n=plan.threads) if plan.threads else "")
    say("[batch] " + _("{notebook}: {runs} run(s) into {out}; {done} already done, {todo} to run, {parallel} at once{each}").format(
        notebook=plan.notebook.name, runs=len(plan.runs), out=plan.out, done=len(plan.runs) - len(queue), todo=len(queue),
        parallel=plan.parallel, each=each))
    bar = tqdm(total=len(plan.runs), initial=len(plan.runs) - len(queue), desc=_("batch"), unit=_("run"))
    free = list(plan.devices)  # a card is handed to one run at a time and back when it ends
    pool = ProcessPoolExecutor(plan.parallel, mp_context=get_context("spawn")) if plan.parallel > 1 else None
    running: dict[Any, tuple[Run, str | None]] = {}

    def finish(run: Run, card: str | None, record: dict[str, Any]) -> None:
        records[run.run_id] = {"run_id": run.run_id, "parameters": jsonable(run.parameters), "card": card, **record}
        folder.write_files({f"{run.run_id}/{RUN_RECORD}": json.dumps(jsonable(records[run.run_id]), indent=1, ensure_ascii=False)})
        save()
        free.extend([card] if card is not None else [])
        how = _("ok") if record["status"] == "ok" else (
            _("FAILED (cell {cell}: {error})") if record["failed_cell"] is not None else _("FAILED ({error})")).format(
            cell=record["failed_cell"], error=record["error"])
        say("[batch] " + _("done  {run}: {how} in {seconds} s").format(run=number[run.run_id], how=how, seconds=record["seconds"]))
        bar.update(1)

    def _drive() -> None:
        while queue or running:
            while queue and len(running) < plan.parallel:
                run, card = queue.pop(0), (free.pop(0) if free else None)
                here = folder.claim(run.run_id, "dir")
                folder.claim(f"{run.run_id}/{plan.notebook.name}")  # papermill writes it: the sweep's by name
                task = {"notebook": str(plan.notebook), "output": str(here / plan.notebook.name), "cwd": str(here),
                        "parameters": papermill_parameters(plan, run, card), "kernel_name": kernel_name,
                        "timeout": timeout, "env": {"OMP_NUM_THREADS": str(plan.threads)} if plan.threads else {}}
                records[run.run_id] = {"status": "running"}
                save()
                say("[batch] " + (_("start {run} on card {card}").format(run=number[run.run_id], card=card) if card is not None
                                  else _("start {run}").format(run=number[run.run_id])))
                if pool is None:
                    finish(run, card, execute_run(task))
                else:
                    running[pool.submit(execute_run, task)] = (run, card)
            for future in wait(running, return_when=FIRST_COMPLETED).done if running else ():
                finish(*running.pop(future), future.result())

    from kit.run.launch import signals_raise, stop_descendants

    stopped = False
    try:
        with signals_raise(interrupt=True):  # SIGTERM / SIGHUP end the sweep as Ctrl-C does, through the clean-up below
            _drive()
    except BaseException:
        # The interrupted notebook's nbclient task ends with the interruption; asyncio would report it at exit as
        # "Task exception was never retrieved" and 80 lines of traceback, saying nothing a person can act on.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        for record in records.values():
            if record["status"] in ("running", "pending"):
                record["status"] = "interrupted"
        with contextlib.suppress(KitError):  # a full disk that ended the sweep must not hide why
            save()
        # the workers, their notebook kernels and whatever those started (torchrun and its ranks)
        stopped = True
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        stop_descendants()
        raise
    finally:
        bar.close()
        if pool is not None and not stopped:
            pool.shutdown(wait=True, cancel_futures=True)
    rows = [_row(plan, run, records[run.run_id]) for run in plan.runs]
    failed = sum(row["status"] != "ok" for row in rows)
    say("[batch] " + _("{ok} of {n} run(s) ok").format(ok=len(rows) - failed, n=len(rows))
        + (_(", {n} failed").format(n=failed) if failed else "")
        + _("; results in {csv} and results.json").format(csv=plan.out / "results.csv"))
    return rows


def batch_main(argv: Sequence[str]) -> int:
    from kit.command_parser import CommandParser

    parser = CommandParser("kit batch", _(
        "Run a notebook once for every combination of the values given (papermill's -p, several values\n"
        "meaning a sweep; a value with commas, like q_proj,v_proj, stays one value). NOTEBOOK is a path or\n"
        "the name of one of the kit's notebooks (20_lora_sft). Values are typed as the notebook's defaults;\n"
        "where a default is None, as the config key of that name (kit keys), else as a Python literal. A\n"
        "config key the notebook has no parameter for goes into its `overrides` (e.g. -p lora_rank 2 8 32\n"
        "with notebook 20).\n"
        "\n"
        "Each run gets DIR/<run-id>/: the executed notebook, run.json and, unless given, output_dir as\n"
        "DIR/<run-id>/output. DIR/results.csv and DIR/results.json fill as runs finish: the swept values,\n"
        "status, seconds and every scalar the notebook published. Running the same command again skips the\n"
        "runs that completed and retries the ones that failed. Exit status 1 when any run failed."),
        usage="%(prog)s [-h] NOTEBOOK -p NAME VALUE [VALUE ...] [-p NAME VALUE ...] [--out DIR]\n"
              "                 [--parallel N] [--devices 0,1,...] [--kernel NAME] [--timeout SECONDS] [--lang {en,zh}]",
        epilog=_("example:\n"
                 "  kit batch 20_lora_sft -p lora_rank 2 8 32 -p learning_rate 1e-3 3e-3 -p max_samples 20 --out runs/rank-lr"))
    parser.add_argument("notebook", metavar="NOTEBOOK", help=_("a notebook's path, or the name of one of the kit's notebooks"))
    parser.add_argument("-p", "--parameter", nargs="+", action="append", default=[], metavar=("NAME VALUE", "VALUE"),
                        help=_("a notebook parameter and its value(s)"))
    parser.add_argument("--out", metavar="DIR", help=_("where runs and results go (default runs/batch-<notebook>)"))
    parser.add_argument("--parallel", type=int, metavar="N", help=_(
        "runs at once (default 1, or one per card with --devices); on a CPU they share the cores (OMP_NUM_THREADS per run)"))
    parser.add_argument("--devices", metavar="0,1,...", help=_("one card per run, set through the notebook's visible_devices"))
    parser.add_argument("--kernel", metavar="NAME", help=_("the Jupyter kernel (default: the notebook's)"))
    parser.add_argument("--timeout", type=int, metavar="SECONDS", help=_("the longest one cell may run"))
    parser.add_argument("--lang", choices=("en", "zh"), default=None,
                        help=_("the edition, for a notebook given by name (default: the kit's language)"))
    ns = parser.parse_args(list(argv))
    for i, item in enumerate(ns.parameter):
        if len(item) < 2:  # argparse's own words would be "expected at least one argument"
            parser.error(_("-p {name}: give a value (-p NAME VALUE [VALUE ...])").format(name=item[0]))
        if any(earlier[0] == item[0] for earlier in ns.parameter[:i]):
            parser.error(_("-p {name} is given twice; put all its values after one -p").format(name=item[0]))
    parameters: dict[str, Any] = {item[0]: item[1:] for item in ns.parameter}
    out = ns.out or str(Path("runs") / f"batch-{Path(ns.notebook).stem}")
    rows = run_batch(ns.notebook, parameters, out, ns.parallel, ns.devices, ns.kernel, ns.timeout, ns.lang)
    print(format_table(rows))
    return 1 if any(row["status"] != "ok" for row in rows) else 0
