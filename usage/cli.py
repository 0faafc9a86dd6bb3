"""``covey usage``: what the model calls cost, how fast they were, and how much the
specialists saved against the baseline LLM. Every subcommand takes ``--json``."""

from __future__ import annotations

import csv
import functools
import json
import re
import sqlite3
import sys
from pathlib import Path

import click

from covey_settings import home
from covey_usage import chart as chart_page
from covey_usage import queries, schema, sessions
from covey_usage.cost import PriceError, describe, load_prices, user_prices_file
from covey_usage.output import echo_json


def _friendly(command):
    """Turn database and input trouble into a one-line ClickException."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except queries.UsageDbError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(queries.explain(_db_path(), exc)) from None
        except (PriceError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def _db_path() -> Path:
    ctx = click.get_current_context()
    return (ctx.find_root().meta.get("covey.usage_db") or home.usage_db_path())


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return queries.parse_since(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _money(value) -> str:
    if value is None:
        return "-"
    return f"${value:.6f}" if abs(value) < 0.01 else f"${value:,.4f}"


def _num(value, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


_NUMERIC = re.compile(r"^[-$\d.,+/%e]*$")


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Plain aligned text: ``columns`` is (header, key) with values already formatted."""
    cells = [[h for h, _ in columns]] + [[str(r.get(k, "")) for _, k in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    # numbers align right, text left
    right = [i > 0 and all(_NUMERIC.match(row[i]) for row in cells[1:])
             for i in range(len(columns))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if right[i] else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


since_option = click.option("--since", metavar="WHEN",
                            help="Only calls since a duration ago (30m, 12h, 7d) or a UTC date.")
task_option = click.option("--task", help="Only calls for this task (completion, doc, refactor, "
                                          "next-edit).")
client_option = click.option("--client", help="Only calls from this client (editor, eval, cli).")
json_option = click.option("--json", "as_json", is_flag=True, help="Output JSON.")


@click.group(name="usage", invoke_without_command=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Usage database to read (default: $COVEY_HOME/usage.db).")
@json_option
@click.pass_context
def usage_group(ctx: click.Context, db_path: Path | None, as_json: bool) -> None:
    """The usage log: one row per model call with latency, tokens and cost.

    Without a subcommand, prints the summary by task.

    Example:

    \b
        covey usage
        covey usage summary --by day --since 7d
        covey usage list --status error
    """
    if db_path is not None:
        ctx.find_root().meta["covey.usage_db"] = db_path
    if ctx.invoked_subcommand is None:
        ctx.invoke(summary, as_json=as_json)


@usage_group.command()
@click.option("--by", "by", type=click.Choice(queries.GROUPS), default="task", show_default=True,
              help="Group calls by this.")
@since_option
@task_option
@client_option
@json_option
@_friendly
def summary(by: str, since: str | None, task: str | None, client: str | None,
            as_json: bool) -> None:
    """Calls, acceptance, p50/p95 latency, tokens and cost per group, with the savings
    against the baseline LLM. Where the editor reported what became of its suggestions:
    how many it showed, the share kept in full and in part, characters accepted per
    suggestion shown, the share ignored, and how much accepted text was still there after
    30 s, 2 and 5 minutes (compare adapter versions with --by adapter).

    Example:

    \b
        covey usage summary --by specialist --since 30d
        covey usage summary --by adapter --task completion
        covey usage summary --by day --json
    """
    path = _db_path()
    db = queries.open_for_reading(path)
    start = _since(since)
    rows = queries.fetch_calls(db, since=start, task=task, client=client)
    table = load_prices()
    engine_sessions = sessions.fetch_sessions(db, start)
    groups = queries.summarize(rows, by, sessions.fully_loaded(rows, engine_sessions, table))
    uptime = sessions.uptime_summary(engine_sessions, table, start)
    unpriced = [table.unpriced_message(d) for d in queries.unpriced_devices(rows)
                if d not in ("remote",)]
    if any(r.get("device") == "remote" and r.get("local_cost_usd") is None for r in rows):
        unpriced.append("calls to a remote engine are unpriced: set [hardware] remote_device "
                        f"in {user_prices_file()} to the row of its GPU")
    if as_json:
        echo_json({"db": str(path), "by": by, "groups": groups, "engine_uptime": uptime,
                    "unpriced": unpriced})
        return
    if not groups:
        click.echo(f"No calls logged yet ({path}).")
        return
    shown = [{
        "key": g["key"], "calls": g["calls"], "ok": g["ok"],
        "accept": _num(g["acceptance_rate"] and g["acceptance_rate"] * 100, "{:.0f}%")
        if g["rated"] else "-",
        "ttft": f"{_num(g['ttft_p50_ms'])}/{_num(g['ttft_p95_ms'])}",
        "latency": f"{_num(g['latency_p50_ms'])}/{_num(g['latency_p95_ms'])}",
        "tokens": f"{g['prompt_tokens']}+{g['completion_tokens']}",
        "spent": _money(g["spent_usd"]), "fully": _money(g["spent_fully_usd"]),
        "llm": _money(g["llm_equivalent_usd"]),
        "ratio": f"{_num(g['cost_ratio'], '{:.1f}x')}/{_num(g['cost_ratio_fully'], '{:.1f}x')}",
        "per_acc": f"{_money(g['usd_per_accepted'])}/{_money(g['usd_per_accepted_fully'])}",
        "energy": _energy(g),
    } for g in groups]
    columns = [(by, "key"), ("calls", "calls"), ("ok", "ok"), ("accepted", "accept")]
    if any(g["shown"] for g in groups):  # none shown (eval, CLI calls): the table as it was
        columns += _OUTCOME_COLUMNS
        for row, group in zip(shown, groups, strict=True):
            row.update(_outcome_cells(group))
    columns += [("ttft p50/p95 ms", "ttft"), ("latency p50/p95 ms", "latency"),
                ("tokens in+out", "tokens"), ("spent marginal", "spent"),
                ("fully loaded", "fully"), ("LLM-equivalent", "llm"),
                ("x cheaper m/f", "ratio"), ("$/accepted m/f", "per_acc"), ("energy", "energy")]
    click.echo(_table(shown, columns))
    click.echo(f"Engine uptime recorded: {uptime['uptime_s'] / 3600:.2f} h in "
               f"{uptime['sessions']} session(s), ${uptime['uptime_usd']:.4f}; fully loaded "
               "spreads its idle time and energy over each day's calls.")
    for line in unpriced:
        click.echo(f"Unpriced: {line}")


def _percent(rate) -> str:
    return _num(None if rate is None else rate * 100, "{:.0f}%")


def _horizon(seconds: float) -> str:
    return f"{seconds / 60:.0f}m" if seconds >= 60 else f"{seconds:.0f}s"


_OUTCOME_COLUMNS = [("shown", "shown"), ("kept full/part", "kept"), ("chars/shown", "chars"),
                    ("ignored", "ignored"),
                    ("retained " + "/".join(map(_horizon, schema.RETENTION_COLUMNS.values())),
                     "retained")]
"""The summary's columns for what became of the suggestions shown."""


def _outcome_cells(group: dict) -> dict:
    return {
        "shown": group["shown"],
        "kept": f"{_percent(group['acceptance_full_rate'])}/"
                f"{_percent(group['acceptance_partial_rate'])}",
        "chars": _num(group["chars_accepted_per_shown"], "{:.1f}"),
        "ignored": _percent(group["ignored_share"]),
        "retained": "/".join(_percent(group[f"{column}_rate"])
                             for column in schema.RETENTION_COLUMNS),
    }


def _energy(group: dict) -> str:
    """Joules measured, and how many calls had no energy counter (never counted as 0)."""
    if group["energy_j"] is None:
        return "unmeasured"
    missing = group["energy_unmeasured"]
    return f"{group['energy_j']:.0f} J" + (f" ({missing} unmeasured)" if missing else "")


@usage_group.command(name="list")
@task_option
@since_option
@click.option("--status", type=click.Choice(queries.STATUSES), help="Only calls with this status.")
@client_option
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many calls, newest first.")
@json_option
@_friendly
def list_calls(task: str | None, since: str | None, status: str | None, client: str | None,
               limit: int, as_json: bool) -> None:
    """Recent calls, newest first.

    Example:

    \b
        covey usage list --task completion --since 1h
        covey usage list --status timeout -n 50 --json
    """
    db = queries.open_for_reading(_db_path())
    rows = queries.fetch_calls(db, since=_since(since), task=task, status=status, client=client,
                               limit=limit, newest_first=True)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No calls match.")
        return
    shown = [{
        **r, "tokens": f"{r['prompt_tokens'] or 0}+{r['completion_tokens'] or 0}",
        "ttft": _num(r["ttft_ms"]), "latency": _num(r["latency_ms"]),
        "local": _money(r["local_cost_usd"]), "llm": _money(r["llm_cost_usd"]),
        "acc": {None: "-", 1: "yes", 0: "no"}.get(r["accepted"], "-"),
        "when": (r["datetime_utc"] or "")[:19].replace("T", " "),
    } for r in rows]
    click.echo(_table(shown, [("id", "id"), ("when (UTC)", "when"), ("task", "task"),
                              ("specialist", "specialist"), ("status", "status"),
                              ("tokens", "tokens"), ("ttft ms", "ttft"),
                              ("latency ms", "latency"), ("local", "local"),
                              ("LLM-eq", "llm"), ("accepted", "acc")]))


@usage_group.command()
@click.option("--csv", "fmt", flag_value="csv", default=True, help="CSV (the default).")
@click.option("--json", "fmt", flag_value="json", help="A JSON array of rows.")
@since_option
@task_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file instead of stdout.")
@_friendly
def export(fmt: str, since: str | None, task: str | None, output: Path | None) -> None:
    """Every column of every call, oldest first.

    Example:

    \b
        covey usage export --csv -o calls.csv
        covey usage export --json --since 7d | jq length
    """
    db = queries.open_for_reading(_db_path())
    rows = queries.fetch_calls(db, since=_since(since), task=task)
    out = output.open("w", newline="") if output else sys.stdout
    try:
        if fmt == "json":
            out.write(json.dumps(rows, indent=2) + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=schema.ALL_CALL_COLUMNS,
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"Wrote {len(rows)} calls to {output}", err=True)


@usage_group.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("covey-usage.html"), show_default=True, help="The HTML file to write.")
@click.option("--by", "size", type=click.Choice(["day", "hour"]), default="day",
              show_default=True, help="One point per day or per hour.")
@since_option
@task_option
@json_option
@_friendly
def chart(output: Path, size: str, since: str | None, task: str | None, as_json: bool) -> None:
    """An HTML page (inline SVG, no scripts) charting cost and latency over time, and
    the share of suggestions kept and retained where the editor reported on them.

    Example:

    \b
        covey usage chart --since 30d -o usage.html
        covey usage chart --by hour --since 1d --json
    """
    db = queries.open_for_reading(_db_path())
    series = queries.buckets(queries.fetch_calls(db, since=_since(since), task=task), size)
    try:
        output.write_text(chart_page.page(series))
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    if as_json:
        echo_json({"output": str(output), "by": size, "buckets": series})
    else:
        click.echo(f"Wrote {output} ({len(series)} {size}s)")


@usage_group.command()
@json_option
@_friendly
def path(as_json: bool) -> None:
    """Where the usage database is.

    Example:

    \b
        sqlite-utils tables "$(covey usage path)" --counts
    """
    where = _db_path()
    if as_json:
        db = queries.open_for_reading(where)
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0] if db else 0
        echo_json({"path": str(where), "exists": where.exists(), "calls": calls})
    else:
        click.echo(str(where))


@usage_group.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Delete calls older than this (30m, 12h, 90d, 2w).")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@json_option
@_friendly
def prune(older_than: str, dry_run: bool, as_json: bool) -> None:
    """Delete old calls. Eval runs are kept.

    Example:

    \b
        covey usage prune --older-than 90d --dry-run
    """
    try:
        age = queries.parse_duration(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    where = _db_path()
    count = 0
    if where.exists():
        count = queries.prune(queries.open_for_writing(where), age, dry_run=dry_run)
    if as_json:
        echo_json({"deleted": 0 if dry_run else count, "matched": count, "dry_run": dry_run})
    else:
        verb = "Would delete" if dry_run else "Deleted"
        click.echo(f"{verb} {count} calls older than {older_than}.")


@usage_group.command()
@json_option
@_friendly
def prices(as_json: bool) -> None:
    """The prices costs are computed with, each with its date and source.
    Override any of them in $COVEY_HOME/prices.toml.

    Example:

    \b
        covey usage prices --json
    """
    table = load_prices()
    data = describe(table)
    if as_json:
        data["models"] = {name: vars(p) for name, p in table.models.items()}
        echo_json(data)
        return
    marked = set(table.overrides)

    def mark(key: str) -> str:
        return " *" if any(k == key or k.startswith(key + ".") for k in marked) else ""

    click.echo(f"Baseline: {table.baseline.name}   sources: {' + '.join(table.sources)}")
    if marked:
        click.echo(f"* overridden in {user_prices_file()}: {', '.join(sorted(marked))}")
    click.echo(f"Hardware basis: {data['basis']} (own: purchase amortised + electricity; "
               "cloud: on-demand rental)")
    cpu = data["cpu"]
    click.echo(f"CPU{mark('hardware.cpu')}: ${cpu['usd_per_hour_charged']:.5f}/CPU-hour "
               f"({cpu['basis_charged']}; own ${cpu['own_usd_per_hour']:.5f}, cloud "
               f"${cpu['cloud_usd_per_hour']:.5f}); {table.cores_attributed} CPUs when CPU "
               f"time is unknown\n  {cpu['as_of']}: {cpu['source']}")
    click.echo(f"Electricity{mark('energy')}: ${table.usd_per_kwh}/kWh\n  "
               f"{table.energy_as_of}: {table.energy_source}")
    rows = [{"name": name + mark(f"devices.{name}"), "match": d["match"],
             "rate": f"${d['usd_per_hour_charged']:.3f}", "basis": d["basis_charged"],
             "own": f"${d['own_usd_per_hour']:.3f}", "cloud": f"${d['cloud_usd_per_hour']:.2f}",
             "as_of": d["as_of"], "source": d["source"]} for name, d in data["devices"].items()]
    click.echo(_table(rows, [("GPU", "name"), ("NVML name match", "match"), ("$/h", "rate"),
                             ("basis", "basis"), ("own $/h", "own"), ("cloud $/h", "cloud"),
                             ("as of", "as_of"), ("source", "source")]))
    click.echo("A GPU no row matches is unpriced: add a [devices] row to "
               f"{user_prices_file()}.")
    rows = [{"name": p.name + (" (baseline)" if p.name == table.baseline.name else "")
             + mark(f"models.{p.name}"),
             "in": f"${p.input_usd_per_mtok:.2f}", "out": f"${p.output_usd_per_mtok:.2f}",
             "as_of": p.as_of, "source": p.source} for p in table.models.values()]
    click.echo(_table(rows, [("model", "name"), ("$/M in", "in"), ("$/M out", "out"),
                             ("as of", "as_of"), ("source", "source")]))
