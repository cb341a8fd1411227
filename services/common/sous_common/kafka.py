"""The broker factory: the one place Kafka clients get safe, explicit settings (DESIGN §5.8)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from sous_common.decoding import remembered_decoder, tolerant_parser
from sous_common.settings import KafkaSettings


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    if not settings.security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


def security(settings: KafkaSettings) -> BaseSecurity | None:
    """Return FastStream's security object for the configured protocol."""
    context = _ssl_context(settings)
    use_ssl = context is not None
    if settings.security_protocol.startswith("SASL"):
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        user = settings.sasl_username or ""
        kinds: dict[str | None, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
            "PLAIN": SASLPlaintext,
            None: SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }
        return kinds[settings.sasl_mechanism](
            username=user, password=password, ssl_context=context, use_ssl=use_ssl
        )
    if use_ssl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def aiokafka_options(settings: KafkaSettings) -> dict[str, Any]:
    """Return connection options for plain aiokafka clients (admin, benchmarks, tools)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    if context := _ssl_context(settings):
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


class _Broker(KafkaBroker):
    """A KafkaBroker whose subscribers start, and so join their groups, all at once.

    FastStream starts them one after another, and each start waits until its consumer holds
    its partitions. The consumers of one service share a group, so each join rebalances the
    members already in it: one by one, a service with seven consumers waits for seven
    rebalances; together, they join in one or two.
    """

    async def start(self) -> None:
        await self.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in self.subscribers))
        for publisher in self.publishers:
            await publisher.start()
        self.running = True


def make_broker(settings: KafkaSettings, *, client_id: str, **extra: Any) -> KafkaBroker:
    """Create a FastStream Kafka broker with safe defaults.

    The producer waits for all in-sync replicas; consumers commit only after processing
    unless a subscriber says otherwise. It sends only what may arrive twice or out of order
    (heartbeats, read marks, dead letters; state changes go through the outbox relay's own
    producer), so it is not idempotent: an idempotent producer whose sequence a restarted
    broker lost refuses every later send, and heartbeats must outlive a broker restart.
    """
    return _Broker(
        settings.bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=settings.linger_ms,
        request_timeout_ms=settings.request_timeout_ms,
        max_request_size=settings.max_message_bytes + 65_536,
        allow_auto_create_topics=False,
        security=security(settings),
        # Headers that would break FastStream's parsing reach the consumer guard, which
        # decodes each record once; handlers then get that contract (sous_common.decoding).
        parser=tolerant_parser,
        decoder=remembered_decoder,
        # Per-message "Received/Processed" lines cost more than the work on hot paths.
        log_level=logging.DEBUG,
        **extra,
    )
