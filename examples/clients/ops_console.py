"""Follow test results as an ops console would: one line per result, a summary per suite.

Only a plain Kafka client (aiokafka) and the published JSON contracts are used
(`contracts/schemas/messages/TestResult.schema.json`, `TestSuiteFinished.schema.json`).
The console has a consumer group of its own (`--group`), so it gets every message
whatever other consoles or services do, and it resumes where it stopped: offsets are
committed only after the lines are printed.

Usage::

    python ops_console.py --domain sales --severity error --severity warning
    python ops_console.py --from-beginning --runs --max 20

Environment: `SOUS_KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`), `SOUS_KAFKA_TOPIC_PREFIX`
(default empty). Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

TEST_RESULT_TOPIC = "sous.events.test-result"
"""TestResult and TestSuiteFinished events (key: `order_run_id`)."""
RUN_EVENTS_TOPIC = "sous.events.run"
"""Order-run lifecycle events, followed with `--runs`."""


class Console:
    """Turns events into printed lines, applying the filters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.printed = 0
        """Lines printed so far (results, summaries and run lines), for `--max`."""
        self.suites: set[str] = set()
        """Suites with a printed result; only their summaries are shown when filtering."""

    def wanted(self, event: dict[str, Any]) -> bool:
        """Return True when a TestResult passes `--domain`, `--kitchen` and `--severity`."""
        a = self.args
        return (
            (not a.domain or event.get("domain") in a.domain)
            and (not a.kitchen or event.get("kitchen") in a.kitchen)
            and (not a.severity or event.get("severity") in a.severity)
        )

    def show(self, event: dict[str, Any]) -> None:
        """Print one line for the events this console knows; ignore the others."""
        kind = event.get("type")
        when = str(event.get("occurred_at", ""))[:19]
        if kind == "TestResult" and self.wanted(event):
            self.suites.add(str(event.get("suite_id")))
            name = f"{event['domain']}/{event['recipe']}.{event['step']}.{event['test']}"
            line = (
                f"{when} {event['status'].upper():8} {name} kitchen={event['kitchen']} "
                f"value={event.get('value')!r} threshold={event.get('threshold')!r}"
            )
            self.emit(line + (f" {event['message']}" if event.get("message") else ""))
        elif kind == "TestSuiteFinished" and (
            not self.filtering() or str(event.get("suite_id")) in self.suites
        ):
            counts = " ".join(f"{k}={v}" for k, v in event.get("summary", {}).items())
            blocked = f" BLOCKING: {', '.join(event.get('failed_tests', []))}"
            self.emit(
                f"{when} SUITE    step={event['step']} run={event['order_run_id']} {counts}"
                + (blocked if event.get("blocking") else "")
            )
        elif kind == "OrderRunFinished" and self.args.runs:
            self.emit(
                f"{when} RUN      {event['domain']}/{event['recipe']} "
                f"kitchen={event['kitchen']} {event['status']} run={event['order_run_id']}"
            )

    def filtering(self) -> bool:
        """Return True when any filter is set."""
        return bool(self.args.domain or self.args.kitchen or self.args.severity)

    def emit(self, line: str) -> None:
        """Print a line now (not buffered), so offsets are committed after it is visible."""
        print(line, flush=True)
        self.printed += 1

    def done(self) -> bool:
        """Return True once `--max` lines are printed."""
        return self.args.max is not None and self.printed >= self.args.max


async def follow(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Consume, print, commit, until Ctrl-C or `--max`."""
    prefix = os.environ.get("SOUS_KAFKA_TOPIC_PREFIX", "")
    topics = [prefix + TEST_RESULT_TOPIC] + ([prefix + RUN_EVENTS_TOPIC] if args.runs else [])
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=os.environ.get("SOUS_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        group_id=args.group,
        enable_auto_commit=False,  # we commit ourselves, after printing
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    console = Console(args)
    await consumer.start()
    try:
        while not stop.is_set() and not console.done():
            batches = await consumer.getmany(timeout_ms=500)
            done: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in batches.items():
                for record in records:
                    show_record(console, record)
                    done[tp] = OffsetAndMetadata(record.offset + 1, "")
                    if console.done():
                        break
                if console.done():
                    break
            if done:
                await consumer.commit(done)  # only what was printed
    finally:
        await consumer.stop()


def show_record(console: Console, record: ConsumerRecord[bytes, bytes]) -> None:
    """Decode one record and show it; a message that is not JSON is reported, not fatal."""
    try:
        event = json.loads(record.value or b"")
    except json.JSONDecodeError:
        print(f"unreadable message at {record.topic}[{record.partition}]@{record.offset}")
        return
    if isinstance(event, dict):
        console.show(event)


async def run(args: argparse.Namespace) -> None:
    """Run the console; SIGINT and SIGTERM end it after the current batch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await follow(args, stop)


def main() -> None:
    """Parse the arguments and follow the topics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--group", default="ops-console", help="consumer group (default ops-console)"
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="when the group has no committed offsets, start at the oldest message",
    )
    parser.add_argument("--runs", action="store_true", help="also show finished order runs")
    parser.add_argument("--domain", action="append", help="only this domain; repeatable")
    parser.add_argument("--kitchen", action="append", help="only this kitchen; repeatable")
    parser.add_argument(
        "--severity",
        action="append",
        choices=["error", "warning", "log"],
        help="only tests of this severity; repeatable",
    )
    parser.add_argument("--max", type=int, help="stop after printing this many lines")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
