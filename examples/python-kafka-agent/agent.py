#!/usr/bin/env python3
"""A Polity worker in Python: an external agent over Kafka (confluent-kafka) and Avro (fastavro with
the schema registry's Confluent-compatible API).

    python agent.py --agent <id> --superior <mayorId> --domain <d> --specialization <s> \
        [--topology aamas|dgm] [--capacity 1] [--heartbeat-ms 5000] [--work-seconds 0]
    python agent.py --send-malformed        # one undecodable record, to see it dead-lettered

Environment: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, POLITY_TOPIC_PREFIX (as the platform's), and its
security settings under the same names: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE), KAFKA_SSL_CA_FILE,
KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE, KAFKA_SSL_REJECT_UNAUTHORIZED; SCHEMA_REGISTRY_USERNAME and
SCHEMA_REGISTRY_PASSWORD (or credentials in SCHEMA_REGISTRY_URL).

It follows the contract of processors/examples/external-agent.ts:
- it is in the agent directory (AgentRegistered, executor "external"): the topology declared it,
  or it registers itself under its mayor (aamas) or sub-master (dgm);
- it heartbeats on polity.agents.events, so the health monitor watches it like any worker and its
  superior moves its tasks elsewhere when it stops;
- for each TaskAssigned addressed to it: TaskAccepted, TaskStarted, then TaskCompleted or
  TaskFailed, for the attempt it was given;
- it reports each (task, attempt) once: before acting on a partition it reads it to the end,
  where it finds its own earlier reports, so a restart does not report twice.

Wire format: byte 0, the writer schema's registry id (4 bytes, big-endian), the Avro body. Subjects
are `<catalog topic>-<full record name>`; the platform registers every schema when it starts, so
the agent writes with the latest registered version and reads with the schema named by each
record's id. Every record carries Polity's headers, the hash-chain ones included, so
`polity audit verify` accepts what it writes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import secrets
import signal
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

TASKS = "polity.tasks.events"
AGENTS = "polity.agents.events"
NAMESPACE = "dev.polity.events"
TOPIC_OF = {
    "AgentRegistered": AGENTS,
    "AgentHeartbeat": AGENTS,
    "TaskAccepted": TASKS,
    "TaskStarted": TASKS,
    "TaskCompleted": TASKS,
    "TaskFailed": TASKS,
}
# The task events that change what this agent owes; others are skipped by their type header.
READS = {
    "TaskAssigned",
    "TaskStarted",
    "TaskCompleted",
    "TaskFailed",
    "TaskCancelled",
    "TaskTimedOut",
    "TaskRetried",
    "TaskReassigned",
}
RETRY_SECONDS = 1.0


def log(line: str) -> None:
    print(f"[python-agent] {line}", file=sys.stderr, flush=True)


# ---- security settings (the platform's names, lib/config.ts) --------------------------------------

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


def secret(name: str) -> str | None:
    """NAME, or the content of the file NAME_FILE (its trailing newline dropped)."""
    value, file = os.environ.get(name), os.environ.get(f"{name}_FILE")
    if value and file:
        raise SystemExit(f"{name} and {name}_FILE are both set; give the password once")
    if file:
        try:
            with open(file, encoding="utf-8") as f:
                value = f.read().removesuffix("\n").removesuffix("\r")
        except OSError as e:
            raise SystemExit(f"{name}_FILE={file} cannot be read ({e.strerror})") from None
    return value or None


def existing_file(name: str) -> str | None:
    path = os.environ.get(name)
    if path and not os.path.isfile(path):
        raise SystemExit(f"{name}={path}: no such file")
    return path or None


def kafka_settings(brokers: str) -> dict[str, Any]:
    """bootstrap.servers and librdkafka's security settings; a password never appears in a message."""
    settings: dict[str, Any] = {"bootstrap.servers": brokers}
    protocol = (os.environ.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise SystemExit(f"KAFKA_SECURITY_PROTOCOL={protocol} is not one of {', '.join(PROTOCOLS)}")
    settings["security.protocol"] = protocol.lower()
    if protocol.startswith("SASL_"):
        mechanism = (os.environ.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").strip().upper()
        if mechanism not in MECHANISMS:
            raise SystemExit(f"KAFKA_SASL_MECHANISM={mechanism} is not one of {', '.join(MECHANISMS)}")
        username, password = os.environ.get("KAFKA_SASL_USERNAME"), secret("KAFKA_SASL_PASSWORD")
        if not username or not password:
            raise SystemExit(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        settings.update({"sasl.mechanisms": mechanism, "sasl.username": username, "sasl.password": password})
    if protocol.endswith("SSL"):
        ca, cert, key = (existing_file(n) for n in ("KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE"))
        if (cert is None) != (key is None):
            raise SystemExit("mutual TLS needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE")
        if ca:
            settings["ssl.ca.location"] = ca
        if cert and key:
            settings.update({"ssl.certificate.location": cert, "ssl.key.location": key})
        verify = (os.environ.get("KAFKA_SSL_REJECT_UNAUTHORIZED") or "on").strip().lower()
        if verify in ("off", "false", "0", "no"):
            settings["enable.ssl.certificate.verification"] = False
    return settings


def registry_login(url: str) -> tuple[str, str | None]:
    """The URL without credentials, and the Authorization header (from the URL or SCHEMA_REGISTRY_USERNAME)."""
    parts = urllib.parse.urlsplit(url)
    username, password = parts.username, parts.password
    if username is not None:
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        username, password = urllib.parse.unquote(username), urllib.parse.unquote(password or "")
    else:
        username, password = os.environ.get("SCHEMA_REGISTRY_USERNAME"), secret("SCHEMA_REGISTRY_PASSWORD")
    if not username:
        return url, None
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
    return url, f"Basic {token}"


# ---- the registry and the wire format -------------------------------------------------------------


class Registry:
    """The two calls of the Confluent schema registry API the agent makes, cached."""

    def __init__(self, url: str) -> None:
        url, self.authorization = registry_login(url)
        self.url = url.rstrip("/")
        self.latest_by_subject: dict[str, tuple[int, Any]] = {}
        self.by_id: dict[int, Any] = {}

    def _get(self, path: str) -> dict:
        headers = {"accept": "application/vnd.schemaregistry.v1+json"}
        if self.authorization:
            headers["authorization"] = self.authorization
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as e:
            raise RegistryError(f"GET {path}: HTTP {e.code}: {e.read()[:300]!r}", e.code) from e

    def latest(self, subject: str) -> tuple[int, Any]:
        if subject not in self.latest_by_subject:
            answer = self._get(f"/subjects/{urllib.parse.quote(subject, safe='')}/versions/latest")
            self.latest_by_subject[subject] = (answer["id"], fastavro.parse_schema(json.loads(answer["schema"])))
        return self.latest_by_subject[subject]

    def schema(self, schema_id: int) -> Any:
        if schema_id not in self.by_id:
            answer = self._get(f"/schemas/ids/{schema_id}")
            self.by_id[schema_id] = fastavro.parse_schema(json.loads(answer["schema"]))
        return self.by_id[schema_id]


class RegistryError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Undecodable(Exception):
    """A record this agent cannot read; the platform's own readers dead-letter it."""


def subject_of(message_type: str) -> str:
    return f"{TOPIC_OF[message_type]}-{NAMESPACE}.{message_type}"


def encode(registry: Registry, message_type: str, value: dict) -> bytes:
    schema_id, schema = registry.latest(subject_of(message_type))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, value)
    return struct.pack(">bI", 0, schema_id) + body.getvalue()


def decode(registry: Registry, data: bytes | None) -> tuple[str, dict]:
    if not data or len(data) < 5 or data[0] != 0:
        raise Undecodable("not in the wire format")
    (schema_id,) = struct.unpack(">I", data[1:5])
    try:
        schema = registry.schema(schema_id)
    except RegistryError as e:
        if e.status == 404:
            raise Undecodable(f"schema id {schema_id} is not in the registry") from e
        raise
    try:
        value = fastavro.schemaless_reader(io.BytesIO(data[5:]), schema)
    except Exception as e:  # fastavro raises several kinds on a bad body
        raise Undecodable(f"body does not decode with schema id {schema_id}: {e}") from e
    return schema["name"].split(".")[-1], plain(value)


def plain(value: Any) -> Any:
    """fastavro reads uuid fields as UUID objects; the agent passes ids on as the strings they are."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, uuid.UUID) else value


# ---- envelope, headers and the hash chain (producers/envelope.ts, producers/chain.ts) -------------


def now_ms() -> int:
    return int(time.time() * 1000)


def envelope(
    message_type: str,
    tenant: str,
    correlation: str,
    causation: str | None,
    actor_id: str,
    aggregate: tuple[str, str],
    version: int = -1,
) -> dict:
    return {
        "eventId": str(uuid.uuid4()),
        "type": message_type,
        "occurredAt": now_ms(),
        "tenantId": tenant,
        "correlationId": correlation,
        "causationId": causation,
        "actor": {"id": actor_id, "tier": "WORKER"},
        "aggregate": {"type": aggregate[0], "id": aggregate[1], "version": version},
    }


def child_traceparent(parent: str | None) -> str:
    """The same trace as the record answered (a new span in it), or a new trace."""
    parts = (parent or "").split("-")
    trace = parts[1] if len(parts) == 4 and len(parts[1]) == 32 else secrets.token_hex(16)
    return f"00-{trace}-{secrets.token_hex(8)}-01"


def record_hash(prev: str, key: bytes, value: bytes) -> str:
    return hashlib.sha256(prev.encode() + b"\n" + key + b"\n" + value).hexdigest()


def header(headers: list | None, name: str) -> str | None:
    for k, v in headers or []:
        if k == name and v is not None:
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


class Chain:
    """The latest hash of each stream (topic, aggregate) this agent knows, as HashChain does."""

    def __init__(self) -> None:
        self.heads: dict[tuple[str, str], str] = {}

    def observe(self, topic: str, headers: list | None) -> None:
        aggregate, digest = header(headers, "polity-aggregate"), header(headers, "polity-hash")
        if not aggregate or not digest:
            return
        head = self.heads.get((topic, aggregate))
        # Only a record extending the known head moves it (our own records read back do not).
        if head is None or head == (header(headers, "polity-prev") or ""):
            self.heads[(topic, aggregate)] = digest


class Writer:
    """Validates by encoding, then sends with the platform's headers; waits until Kafka has it."""

    def __init__(self, brokers: str, registry: Registry, prefix: str, chain: Chain, client_id: str) -> None:
        # murmur2_random is the Java client's (and kafkajs's) partitioner: a goal's events from this
        # agent land in the goal's partition, after the events they answer. librdkafka's default
        # (crc32) would put them elsewhere.
        self.producer = Producer(
            {
                **kafka_settings(brokers),
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "client.id": client_id,
                "linger.ms": 0,
            }
        )
        self.registry, self.prefix, self.chain = registry, prefix, chain

    def send(self, messages: list[tuple[str, dict, str, str | None]]) -> None:
        """Each message: (type, payload with envelope, key, traceparent). Raises when Kafka refused one."""
        errors: list[str] = []
        before: dict[tuple[str, str], str | None] = {}
        # Encoding checks every message against its schema before any is sent.
        encoded = [(m, encode(self.registry, m[0], m[1])) for m in messages]
        for (message_type, value, key, traceparent), data in encoded:
            topic = TOPIC_OF[message_type]
            env = value["envelope"]
            aggregate = f"{env['aggregate']['type']}:{env['aggregate']['id']}"
            prev = self.chain.heads.get((topic, aggregate), "")
            digest = record_hash(prev, key.encode(), data)
            headers = [
                ("polity-event-id", env["eventId"]),
                ("polity-type", message_type),
                ("polity-tenant-id", env["tenantId"]),
                ("polity-correlation-id", env["correlationId"]),
                ("traceparent", traceparent or child_traceparent(None)),
                ("polity-aggregate", aggregate),
                ("polity-hash", digest),
            ]
            if env.get("causationId"):
                headers.append(("polity-causation-id", env["causationId"]))
            if prev:
                headers.append(("polity-prev", prev))
            # Messages of one stream in one call link to each other.
            before.setdefault((topic, aggregate), self.chain.heads.get((topic, aggregate)))
            self.chain.heads[(topic, aggregate)] = digest
            self.producer.produce(
                self.prefix + topic,
                key=key.encode(),
                value=data,
                headers=headers,
                on_delivery=lambda err, _msg: err and errors.append(str(err)),
            )
        remaining = self.producer.flush(30)
        if errors or remaining:
            for stream, head in before.items():  # not written: the next try links where these would have
                if head is None:
                    self.chain.heads.pop(stream, None)
                else:
                    self.chain.heads[stream] = head
            raise RuntimeError(f"Kafka did not take the report: {errors or f'{remaining} still queued'}")

    def send_raw(self, topic: str, key: bytes, value: bytes, headers: list) -> tuple[int, int]:
        where: list[tuple[int, int]] = []
        errors: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err:
                errors.append(str(err))
            else:
                where.append((msg.partition(), msg.offset()))

        self.producer.produce(self.prefix + topic, key=key, value=value, headers=headers, on_delivery=delivered)
        self.producer.flush(30)
        if errors or not where:
            raise RuntimeError(f"Kafka did not take the record: {errors}")
        return where[0]


# ---- the agent ------------------------------------------------------------------------------------


@dataclass
class Open:
    """An assignment to this agent that is neither reported nor void yet."""

    partition: int
    offset: int  # of the TaskAssigned: the group's offset stays there until it is reported
    assigned: dict
    traceparent: str | None
    started: bool = False


@dataclass
class Running:
    future: Future
    abort: threading.Event
    began: float


def work(task: dict, seconds: float, abort: threading.Event) -> dict:
    """The agent's deterministic work: a digest of the task's text (its `text` input, description or title)."""
    if abort.wait(seconds):
        raise InterruptedError("the attempt was made void")
    text = task["inputs"].get("text") or task.get("description") or task["title"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    words = len(text.split())
    return {
        "result": f"python: {words} words, sha256 {digest[:16]}",
        "outputs": {"words": str(words), "sha256": digest},
        "cost": Decimal("0.0050"),
    }


def attempt_key(goal_id: str, task_id: str, attempt: int) -> str:
    return f"{goal_id}/{task_id}#{attempt}"


@dataclass
class Agent:
    agent_id: str
    brokers: str
    registry: Registry
    prefix: str
    capacity: int
    work_seconds: float
    chain: Chain = field(default_factory=Chain)
    open: dict[str, Open] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    running: dict[str, Running] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)
    caught_up: set[int] = field(default_factory=set)
    committed: dict[int, int] = field(default_factory=dict)
    retry_at: float = 0.0
    stopping: bool = False

    def __post_init__(self) -> None:
        self.writer = Writer(self.brokers, self.registry, self.prefix, self.chain, f"polity-python-{self.agent_id}")
        self.pool = ThreadPoolExecutor(max_workers=self.capacity)
        self.topic = self.prefix + TASKS

    # -- what the agent owes, folded from the log (reading an event twice changes nothing) --

    def close(self, key: str) -> None:
        self.closed.add(key)
        self.open.pop(key, None)
        r = self.running.get(key)
        if r:
            r.abort.set()

    def supersede(self, goal_id: str, task_id: str, attempt: float) -> None:
        for key, o in list(self.open.items()):
            a = o.assigned
            if a["goalId"] == goal_id and a["taskId"] == task_id and a["attempt"] < attempt:
                self.close(key)

    def fold(self, kind: str, e: dict, partition: int, offset: int, traceparent: str | None) -> None:
        if kind == "TaskAssigned":
            if e["assigneeTier"] != "WORKER":
                return
            self.supersede(e["goalId"], e["taskId"], e["attempt"])
            key = attempt_key(e["goalId"], e["taskId"], e["attempt"])
            if e["assigneeId"] == self.agent_id and key not in self.closed and key not in self.open:
                self.open[key] = Open(partition, offset, e, traceparent)
        elif kind == "TaskStarted":
            o = self.open.get(attempt_key(e["goalId"], e["taskId"], e["attempt"]))
            if o and e["agentId"] == self.agent_id:
                o.started = True
        elif kind in ("TaskCompleted", "TaskFailed", "TaskTimedOut"):
            if e["agentId"] == self.agent_id:
                self.close(attempt_key(e["goalId"], e["taskId"], e["attempt"]))
        elif kind in ("TaskRetried", "TaskReassigned"):
            self.supersede(e["goalId"], e["taskId"], e["attempt"])
        elif kind == "TaskCancelled":
            self.supersede(e["goalId"], e["taskId"], float("inf"))

    # -- reporting --

    def report(self, o: Open, *messages: tuple[str, dict]) -> None:
        """Writes messages about the assignment: its tenant and goal, caused by the TaskAssigned, in its trace."""
        a = o.assigned
        trace = child_traceparent(o.traceparent)
        self.writer.send(
            [
                (
                    t,
                    {
                        "envelope": envelope(
                            t,
                            a["envelope"]["tenantId"],
                            a["goalId"],
                            a["envelope"]["eventId"],
                            self.agent_id,
                            ("TASK", a["taskId"]),
                        ),
                        **payload,
                    },
                    a["goalId"],
                    trace,
                )
                for t, payload in messages
            ]
        )

    def ids(self, o: Open) -> dict:
        a = o.assigned
        return {"goalId": a["goalId"], "taskId": a["taskId"], "agentId": self.agent_id, "attempt": a["attempt"]}

    def failed(self, o: Open, reason: str, kind: str, retryable: bool, duration: int) -> tuple[str, dict]:
        return (
            "TaskFailed",
            {
                **self.ids(o),
                "reason": reason,
                "failureKind": kind,
                "retryable": retryable,
                "exitCode": None,
                "output": None,
                "durationMs": duration,
                "usage": None,
            },
        )

    def act(self) -> None:
        """Starts the open assignments of partitions read to their end; reports finished work."""
        if self.stopping or time.monotonic() < self.retry_at:
            return
        try:
            for key, o in list(self.open.items()):
                if key in self.running or o.partition not in self.caught_up:
                    continue
                if not o.started:
                    self.report(
                        o,
                        ("TaskAccepted", {**self.ids(o), "tier": "WORKER"}),
                        ("TaskStarted", {**self.ids(o), "executor": "external"}),
                    )
                    o.started = True
                    log(f"{o.assigned['taskId']} (attempt {o.assigned['attempt']}) of {o.assigned['goalId']}: started")
                abort = threading.Event()
                self.running[key] = Running(
                    self.pool.submit(work, o.assigned["task"], self.work_seconds, abort), abort, time.monotonic()
                )
            for key, r in list(self.running.items()):
                if not r.future.done():
                    continue
                o = self.open.get(key)
                if o is None or r.abort.is_set():  # void meanwhile: nobody waits for this result
                    del self.running[key]
                    continue
                duration = int((time.monotonic() - r.began) * 1000)
                error = r.future.exception()
                if error is None:
                    try:
                        self.report(
                            o,
                            (
                                "TaskCompleted",
                                {
                                    **self.ids(o),
                                    **r.future.result(),
                                    "durationMs": duration,
                                    "exitCode": None,
                                    "usage": None,
                                },
                            ),
                        )
                    except (ValueError, TypeError) as e:
                        # A result that does not fit the schema would be refused on every try.
                        error = e
                        self.report(
                            o,
                            self.failed(
                                o, f"the result does not fit TaskCompleted: {e}", "INVALID_OUTPUT", False, duration
                            ),
                        )
                else:
                    self.report(o, self.failed(o, str(error), "EXECUTION_ERROR", True, duration))
                del self.running[key]
                log(
                    f"{o.assigned['taskId']} (attempt {o.assigned['attempt']}) of {o.assigned['goalId']}: "
                    f"{'completed' if error is None else 'failed'}"
                )
                self.close(key)
        except (RuntimeError, RegistryError, urllib.error.URLError) as e:
            # Kafka or the registry refused: the assignment stays open and is tried again.
            log(f"could not report ({e}); trying again")
            self.retry_at = time.monotonic() + RETRY_SECONDS

    def commit(self, consumer: Consumer, positions: dict[int, int]) -> None:
        """Commits per partition the oldest open assignment's offset, or the read position."""
        offsets = []
        for p, position in positions.items():
            offset = min([position] + [o.offset for o in self.open.values() if o.partition == p])
            if offset >= 0 and offset != self.committed.get(p):
                offsets.append(TopicPartition(self.topic, p, offset))
                self.committed[p] = offset
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException:  # a rebalance: the next commit carries the same offset or a later one
                for tp in offsets:
                    self.committed.pop(tp.partition, None)


def read_directory(brokers: str, registry: Registry, topic: str, chain: Chain) -> dict[str, dict]:
    """Reads the agents topic to its end: the latest AgentRegistered of every agent."""
    consumer = Consumer(
        {
            **kafka_settings(brokers),
            "group.id": f"polity-python-directory-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise SystemExit(f"cannot read {topic}: is the platform running, with this POLITY_TOPIC_PREFIX?")
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in metadata.partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, end in ends.items() if end > 0])
        agents: dict[str, dict] = {}
        deadline = time.monotonic() + 30
        while any(end > 0 for end in ends.values()):
            if time.monotonic() > deadline:
                raise SystemExit(f"could not read {topic} to its end within 30 s")
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                chain.observe(AGENTS, msg.headers())
                if header(msg.headers(), "polity-type") == "AgentRegistered":
                    try:
                        _, value = decode(registry, msg.value())
                        agents[value["agentId"]] = value
                    except Undecodable:
                        pass
            for tp in consumer.position([TopicPartition(topic, p) for p, end in ends.items() if end > 0]):
                if tp.offset >= ends[tp.partition]:
                    ends[tp.partition] = 0  # read to its end
        return agents
    finally:
        consumer.close()


def announce(args: argparse.Namespace, brokers: str, registry: Registry, prefix: str, writer: Writer) -> int:
    """Makes sure the directory holds this agent as an external worker; returns its heartbeat interval."""
    agents = read_directory(brokers, registry, prefix + AGENTS, writer.chain)
    me = agents.get(args.agent)
    if me:
        if me["tier"] != "WORKER" or me["executor"] != "external":
            raise SystemExit(
                f"{args.agent} is registered as a {me['executor']} {me['tier'].lower()}, so the platform "
                "acts for it; an external agent needs an id of its own or one declared external"
            )
        log(f"{args.agent} is registered already (under {me['superiorId']})")
        return me["heartbeatIntervalMs"]
    tier = "MAYOR" if args.topology == "aamas" else "SUB_MASTER"
    superior = agents.get(args.superior)
    if not superior or superior["tier"] != tier or superior["topology"] != args.topology:
        raise SystemExit(f"{args.superior} is not a registered {tier.lower()} of {args.topology}")
    if superior["domain"] != args.domain:
        raise SystemExit(f"{args.superior} belongs to domain {superior['domain']}, not {args.domain}")
    env = envelope("AgentRegistered", "system", args.agent, None, args.agent, ("AGENT", args.agent), 1)
    writer.send(
        [
            (
                "AgentRegistered",
                {
                    "envelope": env,
                    "agentId": args.agent,
                    "name": f"{args.specialization} worker {args.agent} (python)",
                    "tier": "WORKER",
                    "topology": args.topology,
                    "domain": args.domain,
                    "specialization": args.specialization,
                    "superiorId": args.superior,
                    "capacity": args.capacity,
                    "executor": "external",
                    "labels": {"program": "examples/python-kafka-agent/agent.py", "language": "python"},
                    "heartbeatIntervalMs": args.heartbeat_ms,
                    "commandId": None,
                },
                args.agent,
                None,
            )
        ]
    )
    log(f"registered {args.agent} under {args.superior} ({args.domain}/{args.specialization}, external)")
    return args.heartbeat_ms


def send_malformed(brokers: str, registry: Registry, prefix: str) -> None:
    """One record with a real schema id but a body that does not decode: the tier hosts dead-letter it."""
    schema_id, _ = registry.latest(subject_of("TaskCompleted"))
    # The envelope's first field is a string: a length of 2^31 bytes that never come.
    value = struct.pack(">bI", 0, schema_id) + b"\xff\xff\xff\xff\x0f"
    key = f"malformed-{uuid.uuid4()}"
    event_id = str(uuid.uuid4())
    writer = Writer(brokers, registry, prefix, Chain(), "polity-python-malformed")
    partition, offset = writer.send_raw(
        TASKS,
        key.encode(),
        value,
        [
            ("polity-event-id", event_id),
            ("polity-type", "TaskCompleted"),
            ("polity-tenant-id", "system"),
            ("polity-correlation-id", key),
            ("traceparent", child_traceparent(None)),
        ],
    )
    print(
        json.dumps(
            {"topic": prefix + TASKS, "partition": partition, "offset": offset, "key": key, "schemaId": schema_id}
        ),
        flush=True,
    )


class Heartbeat(threading.Thread):
    """AgentHeartbeat every interval, from a thread and a producer of their own, so that a slow report
    or long work never makes a live agent look dead; when the process dies, they stop."""

    def __init__(self, args: argparse.Namespace, writer: Writer, interval_ms: int, in_flight: Callable[[], list[str]]):
        super().__init__(name="heartbeat", daemon=True)
        self.args, self.writer, self.interval, self.in_flight = args, writer, interval_ms / 1000, in_flight
        self.stopped = threading.Event()
        self.sequence = 0

    def beat(self) -> None:
        held = self.in_flight()
        load = len(held) / self.args.capacity
        self.sequence += 1
        env = envelope("AgentHeartbeat", "default", self.args.agent, None, self.args.agent, ("AGENT", self.args.agent))
        self.writer.send(
            [
                (
                    "AgentHeartbeat",
                    {
                        "envelope": env,
                        "agentId": self.args.agent,
                        "tier": "WORKER",
                        "status": "IDLE" if not held else "OVERLOADED" if load >= 1 else "BUSY",
                        "load": float(load),
                        "capacity": self.args.capacity,
                        "inFlightTasks": held,
                        "sequence": self.sequence,
                        "at": now_ms(),
                    },
                    self.args.agent,
                    None,
                )
            ]
        )

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.beat()
            except (RuntimeError, RegistryError, urllib.error.URLError) as e:
                log(f"heartbeat not sent ({e})")


def run(args: argparse.Namespace, brokers: str, registry: Registry, prefix: str) -> None:
    agent = Agent(args.agent, brokers, registry, prefix, args.capacity, args.work_seconds)
    # The agents topic has a writer of its own (registration, heartbeats) with its own chain heads.
    agents_writer = Writer(brokers, registry, prefix, Chain(), f"polity-python-{args.agent}-agents")
    interval_ms = announce(args, brokers, registry, prefix, agents_writer)
    in_flight: list[str] = []
    heartbeat = Heartbeat(args, agents_writer, interval_ms, lambda: in_flight)
    heartbeat.beat()  # the first one before any work: it also readies the producer
    heartbeat.start()
    agent.writer.producer.list_topics(agent.topic, timeout=15)  # so the first report does not wait for metadata
    consumer = Consumer(
        {
            **kafka_settings(brokers),
            "group.id": f"{prefix}polity-external-{args.agent}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "client.id": f"polity-python-{args.agent}",
            # The end of a partition is also reached past transaction markers, which are no messages.
            "enable.partition.eof": True,
        }
    )

    def assigned(c: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            agent.end[tp.partition] = c.get_watermark_offsets(tp, timeout=15)[1]
            agent.caught_up.discard(tp.partition)

    consumer.subscribe([agent.topic], on_assign=assigned)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log(f"{args.agent} is reading {agent.topic}; heartbeat every {interval_ms} ms")
    print(json.dumps({"ready": args.agent}), flush=True)
    while not stop.is_set():
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    agent.caught_up.add(msg.partition())
                else:
                    log(f"consumer: {msg.error()}")
            else:
                agent.chain.observe(TASKS, msg.headers())
                kind = header(msg.headers(), "polity-type")
                if kind is None or kind in READS:
                    try:
                        kind, value = decode(registry, msg.value())
                        agent.fold(kind, value, msg.partition(), msg.offset(), header(msg.headers(), "traceparent"))
                    except Undecodable:
                        pass  # the platform's readers dead-letter it; it is no task of ours
        assignment = consumer.assignment()
        positions: dict[int, int] = {}
        if assignment:
            for tp in consumer.position(assignment):
                if tp.offset < 0:
                    continue  # nothing consumed from it yet
                positions[tp.partition] = tp.offset
                if tp.offset >= agent.end.get(tp.partition, 0):
                    agent.caught_up.add(tp.partition)
        agent.act()
        agent.commit(consumer, positions)
        # The heartbeat thread reads this list whole; it is replaced, never changed in place.
        in_flight = sorted({f"{o.assigned['goalId']}/{o.assigned['taskId']}" for o in agent.open.values()})
    agent.stopping = True
    for r in agent.running.values():
        r.abort.set()
    agent.pool.shutdown(wait=True)
    consumer.close()
    heartbeat.stopped.set()  # alive until here
    heartbeat.join()
    log("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description="A Polity worker in Python over Kafka and Avro.")
    parser.add_argument("--agent")
    parser.add_argument("--superior")
    parser.add_argument("--domain")
    parser.add_argument("--specialization")
    parser.add_argument("--topology", default="aamas", choices=["aamas", "dgm"])
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument(
        "--heartbeat-ms",
        type=int,
        default=5000,
        help="heartbeat interval when the agent registers itself (else its registration's)",
    )
    parser.add_argument("--work-seconds", type=float, default=0.0, help="how long each task takes")
    parser.add_argument(
        "--send-malformed",
        action="store_true",
        help="write one record that does not decode to the tasks topic, then exit",
    )
    args = parser.parse_args()
    brokers, registry_url = os.environ.get("KAFKA_BROKERS"), os.environ.get("SCHEMA_REGISTRY_URL")
    if not brokers or not registry_url:
        raise SystemExit("set KAFKA_BROKERS and SCHEMA_REGISTRY_URL to the platform's Kafka and schema registry")
    prefix = os.environ.get("POLITY_TOPIC_PREFIX", "")
    registry = Registry(registry_url)
    if args.send_malformed:
        return send_malformed(brokers, registry, prefix)
    if not (args.agent and args.superior and args.domain and args.specialization):
        parser.error("--agent, --superior, --domain and --specialization are required")
    if args.capacity < 1:
        parser.error("--capacity is a whole number >= 1")
    run(args, brokers, registry, prefix)


if __name__ == "__main__":
    main()
