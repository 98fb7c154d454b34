"""The `crossroads` command: serve the gateway, run the simulator, manage keys, credits and migrations, import
and check catalogs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from crossroads import logs
from crossroads import settings as settings_module
from crossroads.errors import ConfigError

log = logging.getLogger("crossroads")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args)
        return code
    except ConfigError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossroads", description="A self-hosted, OpenRouter-compatible LLM gateway.")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the API at http://HOST:PORT/api/v1")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or CROSSROADS_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000, or CROSSROADS_PORT)")
    serve.add_argument("--workers", help="worker processes on the port: a number, or auto for one per CPU "
                                         "(default 1, or CROSSROADS_WORKERS)")
    serve.set_defaults(run=_serve)

    sim = commands.add_parser("sim", help="run the upstream simulator (OpenAI, Anthropic and Gemini wire formats)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.set_defaults(run=_sim)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=lambda args: _with_store(_migrate))

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(title="keys commands")
    create = keys.add_parser("create", help="create an API key and print its secret")
    create.add_argument("--name", default="default")
    create.add_argument("--limit", help="spend limit in USD (default: none)")
    create.add_argument("--limit-reset", choices=("daily", "weekly", "monthly"))
    create.set_defaults(run=lambda args: _with_store(lambda store: _keys_create(store, args)))
    listing = keys.add_parser("list", help="list API keys")
    listing.set_defaults(run=lambda args: _with_store(_keys_list))
    delete = keys.add_parser("delete", help="delete an API key by its hash")
    delete.add_argument("hash")
    delete.set_defaults(run=lambda args: _with_store(lambda store: _keys_delete(store, args.hash)))

    credits = commands.add_parser("credits", help="account credits").add_subparsers(title="credits commands")
    add = credits.add_parser("add", help="grant credits (USD)")
    add.add_argument("amount")
    add.add_argument("--note")
    add.set_defaults(run=lambda args: _with_store(lambda store: _credits_add(store, args)))
    show = credits.add_parser("show", help="show granted credits and total usage")
    show.set_defaults(run=lambda args: _with_store(_credits_show))

    catalog = commands.add_parser("catalog", help="import and check catalogs").add_subparsers(title="catalog commands")
    imports = catalog.add_parser("import", help="write a catalog file from OpenRouter's model list (/api/v1/models)")
    imports.add_argument("source", metavar="FILE|URL", help="the model list: a JSON file or an http(s) URL")
    imports.add_argument("--providers-from", metavar="FILE|DIR", type=Path,
                         help="per-model endpoint lists (/api/v1/models/{author}/{slug}/endpoints JSON): a file, "
                              "a file holding a JSON array of them, or a directory of *.json files")
    imports.add_argument("-o", "--output", type=Path, help="the catalog file to write (default: standard output)")
    imports.set_defaults(run=_catalog_import)
    checks = catalog.add_parser("check", help="validate the built-in catalog merged with FILEs (default: with "
                                              "CROSSROADS_CATALOG) and report what needs attention")
    checks.add_argument("files", metavar="FILE", nargs="*", type=Path)
    checks.set_defaults(run=_catalog_check)
    return parser


# -- serve ---------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    settings = settings_module.from_environ()
    workers = settings_module.workers(args.workers) if args.workers is not None else None
    settings = settings.with_flags(host=args.host, port=args.port, workers=workers)
    logs.configure(settings.log_level, settings.log_json, settings.secrets())
    if settings.workers > 1:
        from crossroads.supervisor import Announce, supervise

        _run(supervise(settings, Announce(settings)))
        return 0
    if not settings.metrics:
        _run(_serve_async(settings))
        return 0
    # Metrics are kept in PROMETHEUS_MULTIPROC_DIR, shared by every process a supervisor gives it to; a lone
    # process makes its own. Before anything imports prometheus_client, which reads the variable once.
    from crossroads.metrics import private_directory

    with private_directory():
        _run(_serve_async(settings))
    return 0


async def _serve_async(settings: settings_module.Settings) -> None:
    from aiohttp import web

    from crossroads import supervisor
    from crossroads.api.connections import GatewayRunner
    from crossroads.app import SERVICES, connection_limits, create_app, reload_catalog

    started = time.monotonic()
    handover = supervisor.Handover.inherited()  # a worker of `serve --workers N`
    # From the first instant: a stop asked for while starting waits for the start to finish, then shuts down
    # in order (the ledger shipper stores what was spooled), instead of killing the process half-way.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # A gateway process writes its log lines in batches (one write per request would cost a fifth of its
    # throughput, see `logs.BatchingHandler`), drained every fifth of a second and at exit.
    handler = logs.configure(settings.log_level, settings.log_json, settings.secrets(), batched=True)
    assert isinstance(handler, logs.BatchingHandler)
    _drain_every(loop, handler)
    app = create_app(settings)
    # Stopping drains: the listening socket closes, and requests in flight (streams included) get up to the
    # drain timeout to finish before they are cancelled.
    runner = GatewayRunner(app, limits=connection_limits(settings), handler_cancellation=True,
                           shutdown_timeout=settings.drain_timeout)
    await runner.setup()
    with contextlib.suppress(NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, reload_catalog, app)
    services = app[SERVICES]
    site: web.BaseSite
    if handover is not None:
        site = web.SockSite(runner, handover.listener, backlog=4096)
    else:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=4096, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from exc
    if handover is not None:
        handover.ready()
        watcher = asyncio.create_task(supervisor.watch_supervisor(stop))
    else:
        first_key = None
        if len(services.keys) == 0:
            first_key, _ = await services.keys.create("default")
        configured = [p.name for p in services.catalog.providers.values()
                      if p.configured and p.slug != "simulator"]
        banner(settings.host, settings.port, time.monotonic() - started, workers=1,
               models=len(services.catalog.models), simulator_default=services.planner.policy.simulator_default,
               providers=sorted(configured), first_key=first_key)
    # Everything built at start (catalog, modules, tables) lives as long as the process: keep it out of the
    # garbage collector's way, so its full collections stay short and do not stall requests.
    gc.collect()
    gc.freeze()
    # Requests allocate and free many small containers; most are gone before a young collection would look
    # at them. Collecting young objects every 5,000 allocations instead of 700 halves the collector's time
    # under load (2,000 concurrent streams: 676 -> 311 ms of collection over 20 s, in bench's slow-streams
    # scenario) without changing what it finds.
    gc.set_threshold(5_000, 10, 10)
    try:
        await stop.wait()
    finally:
        if handover is None:
            print("Crossroads: shutting down", flush=True)
        else:
            watcher.cancel()
        await runner.cleanup()


def _drain_every(loop: asyncio.AbstractEventLoop, handler: logs.BatchingHandler) -> None:
    handler.drain()
    loop.call_later(handler.DRAIN_SECONDS, _drain_every, loop, handler)


def banner(host: str, port: int, seconds: float, *, workers: int, models: int, simulator_default: bool,
           providers: list[str], first_key: str | None) -> None:
    """What `serve` prints once it accepts requests."""
    base = f"http://{host}:{port}/api/v1"
    processes = f", {workers} workers" if workers > 1 else ""
    print(f"Crossroads listening on {base}  (ready in {seconds:.2f}s{processes})", flush=True)
    print(f"Dashboard: http://{host}:{port}/ (sign in with the management key or an API key)", flush=True)
    if simulator_default:
        print(f"No provider keys set: the built-in Simulator serves all {models} models.", flush=True)
    else:
        print(f"Providers: {', '.join(providers)}", flush=True)
    if first_key is not None:
        print("First start: created an API key. Use it as your OpenRouter key:", flush=True)
        print(f"\n    {first_key}\n", flush=True)
        print(f"    curl {base}/chat/completions -H 'Authorization: Bearer {first_key}' "
              "-H 'Content-Type: application/json' \\\n"
              "      -d '{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", "
              "\"content\": \"What is the meaning of life?\"}]}'\n", flush=True)


# -- sim -----------------------------------------------------------------------------------------------------


def _sim(args: argparse.Namespace) -> int:
    from crossroads.sim import run

    logs.configure("INFO", False)
    run(args.host, args.port)
    return 0


# -- catalog -------------------------------------------------------------------------------------------------


def _catalog_import(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from crossroads.catalog import importer, loader, openrouter, source

    settings = settings_module.from_environ()
    models = openrouter.decode_models(asyncio.run(source.read(args.source)), args.source)
    endpoint_lists = openrouter.read_endpoints(args.providers_from) if args.providers_from else []
    known = loader.load(settings.catalog_paths, settings.environ)
    document, report = importer.import_models(models, endpoint_lists, known, source=args.source)
    text = importer.to_toml(document, args.source, datetime.now(UTC).strftime("%Y-%m-%d"))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for line in report.lines():
        print(f"crossroads catalog import: {line}", file=sys.stderr)
    return 0


def _catalog_check(args: argparse.Namespace) -> int:
    from crossroads.catalog import check, loader

    settings = settings_module.from_environ()
    paths = tuple(args.files) or settings.catalog_paths
    catalog = loader.load(paths, settings.environ)
    findings = check.check(catalog)
    names = ", ".join(str(p) for p in paths)
    print(f"{len(catalog.models)} models, {len(catalog.providers)} providers (built-in"
          + (f" + {names})" if names else ")"))
    for finding in findings:
        print(finding)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    print(f"{errors} errors, {warnings} warnings")
    return 1 if check.has_errors(findings) else 0


# -- store commands ------------------------------------------------------------------------------------------


def _with_store(action: Callable[..., Awaitable[int]]) -> int:
    settings = settings_module.from_environ()

    async def go() -> int:
        from crossroads.storage.open import open_store

        store = await open_store(settings.database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


async def _migrate(store: object) -> int:
    print("Database is up to date.")
    return 0


async def _keys_create(store: object, args: argparse.Namespace) -> int:
    from crossroads.ledger.accounting import MAX_LIMIT_USD, to_nanos
    from crossroads.ledger.keys import KeyRing

    fields: dict[str, object] = {}
    if args.limit is not None:
        fields["limit_nanos"] = to_nanos(_usd(args.limit, "--limit", MAX_LIMIT_USD))
    if args.limit_reset:
        fields["limit_reset"] = args.limit_reset
    ring = KeyRing(store, None)  # type: ignore[arg-type]
    secret, key = await ring.create(args.name, **fields)
    print(secret)
    print(f"hash: {key.hash}", file=sys.stderr)
    return 0


async def _keys_list(store: object) -> int:
    records = await store.list_keys()  # type: ignore[attr-defined]
    for record in records:
        state = "disabled" if record.disabled else "active"
        limit = "unlimited" if record.limit_nanos is None else f"${record.limit_nanos / 1e9:g}"
        print(f"{record.hash}  {record.label}  {record.name!r}  {state}  {limit}")
    return 0


async def _keys_delete(store: object, key_hash: str) -> int:
    deleted = await store.delete_key(key_hash)  # type: ignore[attr-defined]
    print("deleted" if deleted else "no such key")
    return 0 if deleted else 1


async def _credits_add(store: object, args: argparse.Namespace) -> int:
    import uuid

    from crossroads.ledger.accounting import MAX_GRANT_USD, to_nanos

    amount = _usd(args.amount, "amount", MAX_GRANT_USD)
    if amount <= 0:
        raise ConfigError("amount must be positive")
    await store.grant_credits(str(uuid.uuid4()), to_nanos(amount), args.note, time.time())  # type: ignore[attr-defined]
    return await _credits_show(store)


async def _credits_show(store: object) -> int:
    granted, used = await store.credit_totals()  # type: ignore[attr-defined]
    print(f"credits granted: ${granted / 1e9:.6f}   used: ${used / 1e9:.6f}   remaining: ${(granted - used) / 1e9:.6f}")
    return 0


def _usd(raw: str, name: str, most: int) -> Decimal:
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number of USD, not {raw!r}") from None
    if not amount.is_finite() or not 0 <= amount <= most:
        raise ConfigError(f"{name} must be between 0 and {most} USD, not {raw}")
    return amount


# -- plumbing ------------------------------------------------------------------------------------------------


def _run(coro: Awaitable[None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
