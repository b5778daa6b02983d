"""sinks: the remote sinks (webhook, SNS) built from their configuration, for ``run``/``scan``.

Both commands deliver through the outbox in the state database (``delivery.py``); a sink's
name is its key there, so it must be the same in every process: the webhook's is a hash of
its URL (stable across restarts, and the URL is often a secret), the SNS one its topic ARN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from watcher.config import Config, webhook_url_problem
from watcher.config import Sink as SinkSettings
from watcher.errors import ConfigError
from watcher.log import Logger
from watcher.sinks.delivery import DeliveringSink
from watcher.sinks.webhook import WebhookDelivery, expand_environment, expand_headers
from watcher.state import StateStore


def check_remote_sinks(config: Config) -> None:
    """What only the environment tells, checked before any sink is built (``check-config``,
    ``run``, a reload, ``scan -c``): every ``${VAR}`` a webhook's URL or headers use is set,
    the URL it gives can be delivered to, and no two webhooks get one URL. A ConfigError names
    the file, the entry and the key, never a value."""
    first_with_url: dict[str, int] = {}
    for index, sink in enumerate(config.sinks):
        if sink.type != "webhook" or sink.url is None:
            continue
        entry = f"{config.path or '<config>'}: sinks.{index}"
        url = expand_environment(sink.url, entry)
        expand_headers(dict(sink.headers), entry)
        problem = webhook_url_problem(url)
        if problem is not None:
            raise ConfigError(f"{entry}.url: {problem} (once its ${{VAR}}s are substituted)")
        first = first_with_url.setdefault(url, index)
        if first != index:  # not one outbox (that is keyed by the URL as written): one receiver
            raise ConfigError(
                f"{entry}.url: the same url as sinks.{first}; one webhook sink per URL is "
                "supported (once their ${VAR}s are substituted the two send every event to one "
                "receiver twice): merge their events: into one sink, or give the receiver two "
                "URLs (e.g. a different path or query)"
            )


def remote_sink(
    settings: SinkSettings,
    store: StateStore,
    log: Logger,
    *,
    on_error: Callable[[str], None] | None = None,
    start_worker: bool = True,
    bounded: bool = False,
) -> DeliveringSink | None:
    """The outbox sink for a ``webhook`` or ``sns`` entry (None for the local kinds).

    ``start_worker=False`` only queues: another process (the daemon holding the state directory)
    delivers. ``bounded``: the sink says when ``max_outbox`` events wait (the daemon pauses).
    """
    max_outbox = settings.max_outbox if bounded else None
    if settings.type == "webhook" and settings.url is not None:
        webhook = WebhookDelivery(
            settings.url,
            body_format=settings.format,
            headers=dict(settings.headers),
            timeout_seconds=settings.timeout_seconds,
        )
        name = "webhook:" + hashlib.sha256(settings.url.encode()).hexdigest()[:12]
        return DeliveringSink(
            name,
            webhook,
            store,
            log,
            events=settings.events,
            on_error=on_error,
            start_worker=start_worker,
            max_outbox=max_outbox,
        )
    if settings.type == "sns" and settings.topic_arn is not None:
        from watcher.sinks.sns import SnsDelivery  # noqa: PLC0415 - boto3 only when used

        sns = SnsDelivery(
            settings.topic_arn,
            region=settings.region,
            profile=settings.profile,
            endpoint_url=settings.endpoint_url,
            timeout_seconds=settings.timeout_seconds,
        )
        return DeliveringSink(
            f"sns:{settings.topic_arn}", sns, store, log,
            events=settings.events, on_error=on_error, start_worker=start_worker,
            max_outbox=max_outbox,
        )  # fmt: skip
    return None
