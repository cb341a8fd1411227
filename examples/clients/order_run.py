"""Start an order run from any system: one Kafka command out, one outcome event back.

Only a plain Kafka client (aiokafka) and the published contracts are used. The command
is built by hand as JSON (see `contracts/schemas/messages/StartOrderRun.schema.json`), so
a client in any language can do the same; when the `sous_contracts` package happens to be
installed it is used to double-check the JSON before sending.

Usage::

    python order_run.py sales/daily --variation dev --param day=2026-01-05 --timeout 300

Environment: `SOUS_KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`), `SOUS_KAFKA_TOPIC_PREFIX`
(default empty), and who signs: `SOUS_PRINCIPAL` with its Ed25519 private key in
`SOUS_SIGNING_KEY_FILE` (PEM; the registry publishes its public half). Exit codes:
0 succeeded, 1 failed or cancelled, 2 bad arguments, 3 no outcome before the timeout,
4 rejected (a refused signature or scope too: the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_REJECTED = 0, 1, 2, 3, 4
COMMANDS_TOPIC = "sous.commands.order-run"
"""Where run commands go (key: `order_run_id`)."""
RUN_EVENTS_TOPIC = "sous.events.run"
"""Where the run's lifecycle events come back (key: `order_run_id`)."""


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUIDv7; any unique UUID is accepted, v7 keeps indexes tidy."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def parse_param(text: str) -> tuple[str, Any]:
    """Split `k=v`; `v` is read as JSON when it parses (`3`, `true`), else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def build_command(args: argparse.Namespace, order_run_id: uuid.UUID) -> dict[str, Any]:
    """Build the StartOrderRun JSON by hand (required: `order_run_id`, `domain`, `recipe`)."""
    domain, _, recipe = args.target.partition("/")
    return {
        "type": "StartOrderRun",
        "schema_version": 2,
        "message_id": str(uuid7()),  # consumers deduplicate on it
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "example-order-run-client",
        "order_run_id": str(order_run_id),  # chosen here, so we can follow the run
        "domain": domain,
        "recipe": recipe,
        "variation": args.variation,  # None: the recipe's default variation
        "kitchen": args.kitchen,  # None: the variation's kitchen
        "params": dict(args.param),
    }


def signed(value: bytes) -> list[tuple[str, bytes]]:
    """Return the headers that say who sends; the scheduler refuses a command without them.

    `sous-principal` names the principal; `sous-signature` is the base64 Ed25519 signature
    of the exact value bytes sent.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    principal, key_file = os.environ.get("SOUS_PRINCIPAL"), os.environ.get("SOUS_SIGNING_KEY_FILE")
    if not principal or not key_file:
        print("set SOUS_PRINCIPAL and SOUS_SIGNING_KEY_FILE: commands are signed", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
    signature = key.sign(value)  # type: ignore[call-arg]  # Ed25519 takes the data alone
    return [
        ("type", b"StartOrderRun"),
        ("sous-principal", principal.encode()),
        ("sous-signature", base64.b64encode(signature)),
    ]


def check_with_contracts(command: dict[str, Any]) -> None:
    """Validate the command with `sous_contracts` when installed; other clients skip this."""
    try:
        from sous_contracts.runs import StartOrderRun
    except ImportError:
        return
    try:
        StartOrderRun.model_validate(command)
    except ValueError as exc:  # pydantic's ValidationError: say what is wrong, send nothing
        print(f"invalid StartOrderRun: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


async def wait_from_end(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, topic: str) -> None:
    """Assign every partition of `topic` and pin the position at its current end."""
    if topic not in await consumer.topics():  # a wrong prefix is the usual cause
        print(f"topic {topic} does not exist; is SOUS_KAFKA_TOPIC_PREFIX right?", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    partitions = await producer.partitions_for(topic)  # public way to read the partition list
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:  # resolve now, so no event published after this point can be missed
        await consumer.position(tp)


def outcome(event: dict[str, Any]) -> int:
    """Print a finished or rejected run and return the exit code it maps to."""
    target = f"{event.get('domain')}/{event.get('recipe')}"
    if event["type"] == "OrderRunRejected":
        print(f"rejected: {target}: {event.get('reason')}")
        return EXIT_REJECTED
    tests = event.get("tests") or {}
    counts = " ".join(f"{k}={v}" for k, v in tests.items())
    reason = f" ({event['reason']})" if event.get("reason") else ""
    print(
        f"{event['status']}: {target} variation={event.get('variation')} "
        f"kitchen={event.get('kitchen')}{reason} tests: {counts or 'none'}"
    )
    return EXIT_SUCCEEDED if event["status"] == "succeeded" else EXIT_FAILED


async def run(args: argparse.Namespace) -> int:
    """Send the command, then follow the run's events until it ends or time runs out."""
    bootstrap = os.environ.get("SOUS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    prefix = os.environ.get("SOUS_KAFKA_TOPIC_PREFIX", "")
    order_run_id = uuid7()
    command = build_command(args, order_run_id)
    check_with_contracts(command)
    value = json.dumps(command).encode()
    headers = signed(value)

    # No consumer group: this client only watches, it takes no share of anyone's work.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        await wait_from_end(consumer, producer, prefix + RUN_EVENTS_TOPIC)
        await producer.send_and_wait(
            prefix + COMMANDS_TOPIC, value, key=str(order_run_id).encode(), headers=headers
        )
        print(f"sent StartOrderRun {args.target} order_run_id={order_run_id}", flush=True)
        deadline = time.monotonic() + args.timeout
        while (left := deadline - time.monotonic()) > 0:
            batches = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for records in batches.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                    except json.JSONDecodeError:
                        continue  # not ours to judge; Sous dead-letters bad messages itself
                    if not isinstance(event, dict) or event.get("order_run_id") != str(
                        order_run_id
                    ):
                        continue  # another run's event on the same topic
                    if event.get("type") in ("OrderRunFinished", "OrderRunRejected"):
                        return outcome(event)
                    print(f"  {event.get('type')}", flush=True)  # queued, started …
        print(f"timeout: no outcome for {order_run_id} after {args.timeout:g}s")
        return EXIT_TIMEOUT
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    """Parse the arguments and exit with the run's outcome."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="DOMAIN/RECIPE, e.g. sales/daily")
    parser.add_argument("--variation", help="variation to run (default: the recipe's)")
    parser.add_argument("--kitchen", help="kitchen to run in (default: the variation's)")
    parser.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="K=V",
        help="parameter override; repeatable",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the outcome (default 600)"
    )
    args = parser.parse_args()
    if args.target.count("/") != 1:
        parser.error("target must be DOMAIN/RECIPE")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
