"""``covey eval``: run suites against systems, list runs, write reports, compare runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from covey_eval import render, sandbox, store, suites
from covey_eval.summary import QUALITY
from covey_eval.systems import SYSTEM_NAMES
from covey_specialists.table import ROUTING_POLICIES


def _require_isolation(tasks) -> None:
    """Refuse, before any model is asked, a suite whose scores run generated code that
    cannot be isolated here (one line, not a traceback)."""
    if any(t.test or t.meta.get("test_command") or t.meta.get("test_module") for t in tasks):
        try:
            sandbox.isolation().require()
        except sandbox.IsolationUnavailable as exc:
            raise click.ClickException(str(exc)) from None


def _model_options(command):
    """Options shared by `run` and `sweep`: how to reach the engine and the baseline."""
    options = [
        click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True,
                     help="Model requests in flight at once; raise it on a GPU. An answer "
                          "that times out beside others is asked again alone, as the "
                          "editor asks (the report says how many)."),
        click.option("--workers", type=click.IntRange(min=1),
                     help="Parallel sandboxes (default 4×cores)."),
        click.option("--engine-url", help="Engine base URL (default: the managed engine)."),
        click.option("--engine-key", help="Engine API key (default: COVEY_ENGINE_API_KEY with "
                                          "--engine-url, else the managed engine's)."),
        click.option("--baseline-url", help="OpenAI-compatible base URL (or COVEY_BASELINE_URL)."),
        click.option("--baseline-model", help="Baseline model name (or COVEY_BASELINE_MODEL)."),
        click.option("--baseline-api", type=click.Choice(["chat", "completions"]),
                     help="Baseline API flavour (or COVEY_BASELINE_API; default chat)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("eval")
def eval_group() -> None:
    """Measure quality, latency and cost of the specialists against baselines.

    Example:

        covey eval run --suite humaneval-sl --system oracle --system empty --limit 50
    """


@eval_group.command("suites")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def suites_command(as_json: bool) -> None:
    """List the suites, their sizes and how they are scored.

    Example:

        covey eval suites
    """
    rows = [{"name": s.name, "kind": s.kind, "tasks": len(s.load()), "description": s.description,
             "scored_by": s.scored_by} for s in suites.SUITES.values()]
    rows.append({"name": "repo", "kind": "completion", "tasks": None,
                 "description": "Holes punched in a local repository (--repo PATH)",
                 "scored_by": "its own tests with --test-command; else exact match, edit sim."})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="eval suites")
    for col in ("suite", "kind", "tasks", "description", "scored by"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], "–" if r["tasks"] is None else f"{r['tasks']:,}",
                      r["description"], r["scored_by"])
    Console().print(table)


@eval_group.command("run")
@click.option("--suite", "suite_name", required=True, help="Suite name (see `covey eval suites`).")
@click.option("--system", "systems", multiple=True, required=True,
              type=click.Choice(SYSTEM_NAMES), help="System to evaluate; repeat for several.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many tasks (stratified).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling/bootstrap seed.")
@_model_options
@click.option("--repo", "repo_path", type=click.Path(exists=True, file_okay=False),
              help="For --suite repo: the repository to punch holes in.")
@click.option("--test-command",
              help="For --suite repo: the command that runs its tests, e.g. pytest -x -q")
@click.option("--holes", type=click.Choice(["all", "cross-file"]), default="all",
              show_default=True,
              help="For --suite repo: every hole, or only those whose answer uses a name "
                   "imported from another file of the repository (CrossCodeEval's cut).")
@click.option("--context", type=click.Choice(["repo", "none"]), default="repo",
              show_default=True,
              help="For --suite repo: give the engine systems the workspace the editor would "
                   "have (the repository's index, the files the task's file imports as open "
                   "tabs), or nothing beyond the file.")
@click.option("--routing", type=click.Choice(ROUTING_POLICIES),
              help="For --system routed: the policy (default: each specialist's in the table).")
@click.option("--min-mean-logprob", type=float,
              help="For --system routed: escalate below this mean token log-prob.")
@click.option("--min-token-logprob", type=float,
              help="For --system routed: escalate when any token's log-prob is below this.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_command(suite_name, systems, limit, seed, concurrency, workers, repo_path, test_command,
                holes, context, engine_url, engine_key, baseline_url, baseline_model,
                baseline_api, routing, min_mean_logprob, min_token_logprob, as_json):
    """Run a suite against one or more systems and store the run in the usage log.

    Systems: specialist (the table's specialists on the engine), base (the untuned base
    model on the same engine, prompted fairly: plain continuation for completion, zero-shot
    chat for doc and refactor), base-specialist-prompt (the untuned base sent the
    specialist's own prompts), baseline (an OpenAI-compatible LLM), routed (specialist
    first, the baseline when the routing policy says so; without a baseline endpoint the
    untuned base stands in for it), oracle and empty (sanity bounds).

    Example:

        covey eval run --suite humaneval-sl --system oracle --system empty --json
        covey eval run --suite repo --repo . --test-command "pytest -q -x" --system base --limit 20
        covey eval run --suite repo --repo PATH --holes cross-file --context none --system base
        covey eval run --suite humaneval-sl --system routed --routing on-low-confidence \\
            --min-mean-logprob -0.8 --limit 50
    """
    from covey_eval import session

    is_repo = suite_name == "repo" or suite_name.startswith("repo:")
    if is_repo and not repo_path:
        raise click.ClickException("--suite repo needs --repo PATH")
    if holes == "cross-file" and not is_repo:
        raise click.ClickException("--holes cross-file needs --suite repo (only a repository "
                                   "has other files to import from)")
    try:
        tasks = suites.load(suite_name, limit=limit, seed=seed,
                            repo_options={"path": repo_path, "test_command": test_command,
                                          "holes": holes})
    except (suites.SuiteError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _require_isolation(tasks)
    routing_fields = {"routing": routing, "min_mean_logprob": min_mean_logprob,
                      "min_token_logprob": min_token_logprob}
    settings = session.Settings(engine_url=engine_url, engine_key=engine_key,
                                baseline_url=baseline_url, baseline_model=baseline_model,
                                baseline_api=baseline_api, routing=routing_fields,
                                context=context)
    console = Console(stderr=True)
    try:
        with _progress(console, quiet=False) as bar:
            result = session.run_eval(suite_name, list(dict.fromkeys(systems)), tasks, settings,
                                      limit=limit, seed=seed, concurrency=concurrency,
                                      workers=workers, progress=bar,
                                      holes=holes if is_repo else None)
    except (session.SessionError, sandbox.IsolationUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2,
                              default=str))
        return
    _print_run(result)


def _print_run(result: dict) -> Console:
    out = Console()
    for note in result["meta"].get("notes", []):
        out.print(f"[bold yellow]Note:[/bold yellow] {note}")
    out.print(render.run_table(result))
    for name, system in result["summary"].items():
        out.print(f"  [bold]{name}[/bold]: {system['label']}")
    out.print(f"Stored as eval run {result['run_id']} — "
              f"`covey eval report {result['run_id']} -o report.html`")
    return out


@eval_group.command("sweep")
@click.option("--suite", "suite_name", help="Suite name (see `covey eval suites`).")
@click.option("--from-run", "from_run",
              help="Replay the thresholds over a stored sweep run (id, prefix or 'last') "
                   "instead of asking the models again.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many tasks (stratified).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling/bootstrap seed.")
@click.option("--points", type=click.IntRange(min=1, max=50), default=9, show_default=True,
              help="Thresholds per confidence signal (at quantiles of the observed values).")
@click.option("--tolerance", type=click.FloatRange(min=0.0, max=1.0), default=0.01,
              show_default=True,
              help="Recommend the cheapest point within this much quality of the best.")
@click.option("--metric", type=click.Choice([m for m in QUALITY if m != "diff_lines"]),
              help="Quality metric of the curve and the recommendation (default: the "
                   "suite's headline, e.g. pass@1).")
@click.option("--margin", type=click.FloatRange(min=0.0, max=1.0), default=0.1,
              show_default=True,
              help="Show threshold: recommend the most coverage whose precision beats the "
                   "unfiltered precision by this much.")
@click.option("--min-shown", type=click.IntRange(min=1), default=10, show_default=True,
              help="Show threshold: only recommend points that still show this many answers.")
@click.option("--from-usage", is_flag=True,
              help="Only the show threshold, from your own use: the editor's completions in "
                   "the usage log, right meaning kept (accepted in full or part, or typed, "
                   "and not removed). Asks no model.")
@click.option("--since", help="With --from-usage: calls since a duration (30d) or a date.")
@click.option("--show-only", is_flag=True,
              help="Only the show threshold: ask the specialist alone (no baseline answers, "
                   "no routing curve).")
@_model_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Also write the HTML report (with the curve) to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON.")
def sweep_command(suite_name, from_run, limit, seed, points, tolerance, metric, margin,
                  min_shown, from_usage, since, show_only, concurrency, workers, engine_url,
                  engine_key, baseline_url, baseline_model, baseline_api, output, as_json):
    """Vary the routing thresholds: quality against cost, from never to always-baseline.

    Collects the specialist's and the baseline's answers once (with log-probs and
    validation), then replays every policy and threshold over them. Each point gives the
    quality, $ per 1,000 tasks and escalation rate; the recommended point is the cheapest
    within --tolerance of the best quality. Without a baseline endpoint the untuned base
    model stands in for the baseline LLM, and the report says so.

    The same answers give the editor's show threshold (min_show_logprob): precision (the
    shown answers that are right: tests pass, else exact match) against coverage (the tasks
    where something is shown) per threshold on the specialist's mean token log-prob; the
    recommended one is the most coverage whose precision beats the unfiltered precision by
    --margin.

    Example:

        covey eval sweep --suite humaneval-sl --limit 50 -o sweep.html
        covey eval sweep --from-run last --metric edit_similarity --points 5
        covey eval sweep --suite humaneval-sl --limit 100 --show-only --points 19
        covey eval sweep --from-usage --since 30d
    """
    from covey_eval import session, sweep

    if sum(map(bool, (suite_name, from_run, from_usage))) != 1:
        raise click.ClickException("give one of --suite (a new sweep), --from-run (replay) "
                                   "or --from-usage (your own accepts and rejects)")
    if from_usage:
        _sweep_from_usage(since, points, margin, min_shown, as_json)
        return
    if from_run:
        try:
            result = store.load_run(from_run)
            has_baseline = any(r["system"] == "baseline" for r in result["rows"])
            result["sweep"] = sweep.sweep(result, points=points, tolerance=tolerance,
                                          metric=metric, margin=margin, min_shown=min_shown,
                                          routing=has_baseline and not show_only)
        except store.RunNotFound as exc:
            raise click.ClickException(str(exc)) from None
        except (KeyError, ValueError) as exc:
            raise click.ClickException(f"run {from_run} is not a sweep run: {exc}") from None
        _show_sweep(result, output, as_json, replay=True)
        return
    try:
        tasks = suites.load(suite_name, limit=limit, seed=seed)
    except (suites.SuiteError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _require_isolation(tasks)
    settings = session.Settings(engine_url=engine_url, engine_key=engine_key,
                                baseline_url=baseline_url, baseline_model=baseline_model,
                                baseline_api=baseline_api, signals=True, stand_in=True)

    def attach(result: dict) -> None:
        result["sweep"] = sweep.sweep(result, points=points, tolerance=tolerance, metric=metric,
                                      margin=margin, min_shown=min_shown,
                                      routing=not show_only)

    console = Console(stderr=True)
    try:
        with _progress(console, quiet=False) as bar:
            systems = ["specialist", "empty"] if show_only else ["specialist", "baseline", "empty"]
            result = session.run_eval(suite_name, systems, tasks,
                                      settings, limit=limit, seed=seed,
                                      concurrency=concurrency, workers=workers, progress=bar,
                                      extend=attach)
    except (session.SessionError, sandbox.IsolationUnavailable, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _show_sweep(result, output, as_json)


def _sweep_from_usage(since: str | None, points: int, margin: float, min_shown: int,
                      as_json: bool) -> None:
    from covey_eval import sweep
    from covey_settings import home
    from covey_usage import queries

    try:
        start = queries.parse_since(since) if since else None
        db = queries.open_for_reading(home.usage_db_path())
        try:
            calls = queries.fetch_calls(db, since=start, task="completion", client="editor")
        finally:
            if db is not None:
                db.close()
    except (ValueError, queries.UsageDbError) as exc:
        raise click.ClickException(str(exc)) from None
    show = sweep.from_usage(calls, points=points, margin=margin, min_shown=min_shown)
    if as_json:
        click.echo(json.dumps(show, indent=2, default=str))
        return
    out = Console()
    if not show["points"][0]["n"]:
        out.print("No completion in the usage log has an outcome yet: use the editor a while.")
        return
    out.print(render.show_table({"sweep": {"show": show}}))
    out.print("Only suggestions that were shown have an outcome: this can raise the "
              "threshold in use, never tell whether a lower one would do.")


def _show_sweep(result: dict, output: str | None, as_json: bool, replay: bool = False) -> None:
    if output:
        from covey_eval import report

        Path(output).write_text(report.html(result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"run_id": result["run_id"],
                               "notes": result.get("meta", {}).get("notes", []),
                               **result["sweep"]}, indent=2, default=str))
        return
    if replay:
        out = Console()
        for note in result.get("meta", {}).get("notes", []):
            out.print(f"[bold yellow]Note:[/bold yellow] {note}")
    else:
        out = _print_run(result)
    if result["sweep"].get("points"):
        out.print(render.sweep_table(result))
    out.print(render.show_table(result))
    if output:
        out.print(f"wrote {output}")


class _Bars:
    """A progress callback: one bar per stage (system name, or ``tests``)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bars: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.bars:
            label = "running tests" if stage == "tests" else f"asking {stage}"
            self.bars[stage] = self.progress.add_task(label, total=total)
        self.progress.update(self.bars[stage], completed=done)


class _progress:
    def __init__(self, console: Console, quiet: bool):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 disable=quiet or not console.is_terminal, transient=False)

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return _Bars(self.progress)

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


@eval_group.command("runs")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def runs_command(as_json: bool) -> None:
    """List stored eval runs, newest first. Commands that take a run take its id, a
    unique prefix of it (as git takes commits) or 'last'.

    Example:

        covey eval runs
    """
    try:
        runs = store.list_runs()
    except store.RunNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    table = Table(title="eval runs")
    # The id is never cut (it is what the other commands take); the rest wraps to fit.
    table.add_column("id", no_wrap=True, min_width=max((len(r["id"]) for r in runs), default=2))
    table.add_column("when (UTC)", min_width=10)
    table.add_column("name", min_width=10)
    table.add_column("status", no_wrap=True)
    for r in runs:
        when = (r["datetime_utc"] or "")[:16].replace("T", " ")  # to the minute
        table.add_row(r["id"], when, r["name"], r["status"])
    Console().print(table)


@eval_group.command("report")
@click.argument("run_ref")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              default="eval-report.html", show_default=True, help="HTML file to write.")
def report_command(run_ref: str, output: str) -> None:
    """Write a self-contained HTML report (charts inline) for a run: its id, a unique
    prefix of it, or 'last'.

    Example:

        covey eval report last -o report.html
        covey eval report 01a24e -o report.html
    """
    from covey_eval import report

    try:
        result = store.load_run(run_ref)
    except store.RunNotFound as exc:
        raise click.ClickException(str(exc)) from None
    runs = store.runs_of_suite(result.get("meta", {}).get("suite"))
    if len({r["meta"].get("concurrency") for r in runs}) > 1:
        result["cost_runs"] = runs
    Path(output).write_text(report.html(result), encoding="utf-8")
    click.echo(f"wrote {output}")


@eval_group.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--systems", nargs=2, default=None, metavar="A B",
              help="Pair system A of RUN_A with system B of RUN_B (e.g. base specialist, "
                   "with the same run twice) instead of each system with itself.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def compare_command(run_a: str, run_b: str, systems: tuple[str, str] | None,
                    as_json: bool) -> None:
    """Show B − A per system and metric on the tasks both runs share, with paired intervals.
    Each run is an id, a unique prefix of one, or 'last'.

    Example:

        covey eval compare 019a3c 019a4f
        covey eval compare last last --systems base specialist
    """
    from covey_eval.compare import compare

    try:
        a, b = store.load_run(run_a), store.load_run(run_b)
    except store.RunNotFound as exc:
        raise click.ClickException(str(exc)) from None
    comparison = compare(a, b, systems=systems)
    if not comparison["rows"]:
        raise click.ClickException("the runs share no system and task to compare")
    if as_json:
        click.echo(json.dumps(comparison, indent=2))
        return
    Console().print(render.compare_table(comparison))


def main() -> None:  # pragma: no cover - `python -m covey_eval.cli`
    eval_group(sys.argv[1:])
