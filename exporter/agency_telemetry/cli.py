"""``agency-telemetry``: serve the exporter, run the demo fleet, check a configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from . import __version__
from .app import create_app
from .config import ConfigError, load_config, parse_listen
from .simulator import FleetSimulator

DEMO_LISTEN = "127.0.0.1:9477"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        listen = args.listen or (DEMO_LISTEN if args.command == "demo" and args.config is None else config.listen)
        host, port = parse_listen(listen)
    except (ConfigError, ValueError) as exc:
        print(f"agency-telemetry: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{args.config}: OK ({len(config.agent_types)} agent types, max {config.limits.max_agents} agents)")
        return 0
    app = create_app(config)
    if args.command == "demo":
        app.cleanup_ctx.append(_fleet(f"http://{_client_host(host)}:{port}", args.agents, args.tick))
    if args.duration:
        app.cleanup_ctx.append(_stop_after(args.duration))
    print(f"agency-telemetry {__version__} listening on http://{host}:{port}/ (metrics: /metrics)", flush=True)
    web.run_app(app, host=host, port=port, shutdown_timeout=config.shutdown_timeout, print=None, access_log=None)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agency-telemetry", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "run the exporter"),
        ("demo", "run the exporter with a simulated fleet of agents feeding it"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", help="YAML configuration file (defaults apply without one)")
        command.add_argument("--listen", help="HOST:PORT to listen on (overrides the file's listen)")
        command.add_argument(
            "--duration", type=float, default=0, help="stop after this many seconds (0: run until stopped)"
        )
    demo = commands.choices["demo"]
    demo.add_argument("--agents", type=int, default=24, help="agents in the simulated fleet")
    demo.add_argument("--tick", type=float, default=0.5, help="seconds between simulated batches")
    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config", help="YAML configuration file")
    return parser


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _fleet(url: str, agents: int, tick: float):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(FleetSimulator(url, agents=agents, tick=tick).run(stop))
        yield
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def _stop_after(seconds: float):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        async def stop() -> None:
            await asyncio.sleep(seconds)
            raise web.GracefulExit

        task = asyncio.create_task(stop())
        yield
        task.cancel()

    return context


if __name__ == "__main__":
    sys.exit(main())
