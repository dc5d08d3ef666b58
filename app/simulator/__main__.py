"""``python -m app.simulator``: the platform simulator as its own process.

App ids and secrets come from the environment SNORQ reads (``WHATSAPP_APP_SECRET``…)
unless given here; ``--account`` makes a connection's token valid from the start.
"""

from __future__ import annotations

import dataclasses
import logging
import signal

import click
from werkzeug.serving import make_server

from app.config import PLATFORMS, ConfigError, get_settings
from app.logs import configure_logging
from app.simulator import create_simulator_app
from app.simulator.config import PLATFORM_THROUGHPUT, SimulatorConfig, parse_delays

log = logging.getLogger("snorq.simulator")


def _throughput(specs: tuple[str, ...]) -> dict[str, tuple[int, float]]:
    limits = dict(PLATFORM_THROUGHPUT)
    for spec in specs:
        platform, _, rate = spec.partition("=")
        count, _, seconds = rate.partition("/")
        if platform not in PLATFORMS or not count.isdigit():
            raise click.BadParameter(f"{spec!r} is not PLATFORM=COUNT/SECONDS")
        limits[platform] = (int(count), float(seconds or 1))
    return limits


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
@click.option("--snorq-url", help="Where SNORQ runs [default: SNORQ_PUBLIC_URL].")
@click.option("--whatsapp-secret", help="WhatsApp app secret [default: WHATSAPP_APP_SECRET].")
@click.option("--facebook-secret", help="Messenger app secret [default: FACEBOOK_APP_SECRET].")
@click.option("--tiktok-secret", help="TikTok app secret [default: TIKTOK_CLIENT_SECRET].")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="PLATFORM:ACCOUNT_ID:TOKEN[:REFRESH_TOKEN]",
    help="A connection whose token is valid from the start (repeatable).",
)
@click.option(
    "--delays",
    envvar="SNORQ_SIMULATOR_DELAYS",
    metavar="MIN,MAX",
    help="Seconds before each receipt [default: 0.3,1.5; tests: 0,0.02].",
)
@click.option(
    "--throughput",
    multiple=True,
    metavar="PLATFORM=COUNT/SECONDS",
    help="Override a platform's throughput limit per account (repeatable).",
)
def main(
    host: str,
    port: int,
    snorq_url: str | None,
    whatsapp_secret: str | None,
    facebook_secret: str | None,
    tiktok_secret: str | None,
    accounts: tuple[str, ...],
    delays: str | None,
    throughput: tuple[str, ...],
) -> None:
    """Serve the simulated WhatsApp, Messenger and TikTok APIs until Ctrl-C."""
    configure_logging()
    settings = get_settings()
    apps = dict(settings.platforms)
    for name, secret in (
        ("whatsapp", whatsapp_secret),
        ("facebook", facebook_secret),
        ("tiktok", tiktok_secret),
    ):
        if secret:
            apps[name] = dataclasses.replace(apps[name], app_secret=secret, webhook_secret=secret)
    try:
        pace = parse_delays(delays)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--delays") from None
    config = SimulatorConfig(
        snorq_url=snorq_url or settings.public_url,
        apps=apps,
        delays=pace,
        throughput=_throughput(throughput),
    )
    app = create_simulator_app(config)
    for spec in accounts:
        _register(app.extensions["simulator"], spec)
    server = make_server(host, port, app, threaded=True)
    signal.signal(signal.SIGTERM, _interrupt)
    log.info("Platform simulator at http://%s:%d/, webhooks to %s", host, port, config.snorq_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("Stopping")
    finally:
        server.server_close()
        app.extensions["simulator"].deliveries.close()


def _register(sim, spec: str) -> None:
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in PLATFORMS:
        raise click.BadParameter(f"{spec!r} is not PLATFORM:ACCOUNT_ID:TOKEN[:REFRESH_TOKEN]")
    refresh_token = parts[3] if len(parts) == 4 else None
    sim.registry.register(parts[0], parts[1], parts[2], refresh_token=refresh_token)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
