#!/usr/bin/env python3
"""A Polity worker in Python that speaks only HTTP: the gateway's worker API, standard library only.

    POLITY_URL=http://127.0.0.1:4000 POLITY_TOKEN=<agent token> python3 agent.py [--wait 20] [--ask-context]

It needs no inbound port (it works behind NAT) and no Kafka client:

- GET  /api/v1/agents/me                   who it is, and how often it must heartbeat
- POST /api/v1/agents/me/heartbeat         from a thread, twice per heartbeat interval: the health
                                           monitor watches it from the first one, and moves its
                                           tasks elsewhere when they stop
- GET  /api/v1/tasks/next?wait=N           long poll for its next assignment (204: none yet)
- POST /api/v1/tasks/accept                TaskAccepted + TaskStarted for the attempt it was given
- POST /api/v1/tasks/{taskId}/update       progress
- POST /api/v1/context/request             (--ask-context) what its mayor knows about the task
- POST /api/v1/tasks/{goalId}/{taskId}/result   TaskCompleted or TaskFailed

The work is real and deterministic, from the task's inputs:
- inputs.numbers = "3,4,5": their sum, mean, min and max;
- otherwise the text (inputs.text, else the description, else the title): its words, characters,
  SHA-256 and the text reversed.

It stops cleanly on SIGINT/SIGTERM (the attempt in hand is left to the platform: its superior
reassigns it once the heartbeats stop).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: Any):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('message', body)}")
        self.status = status
        self.field = error.get("field")


class Gateway:
    """The worker API with one agent's bearer token."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/") + "/api/v1"
        self.token = token

    def call(self, method: str, path: str, body: Any = None, timeout: float = 40.0) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(e.code, parsed) from None


def work(task: dict[str, Any], context: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """The agent's work: deterministic, from the task's inputs (see the module's docstring)."""
    inputs = task.get("inputs") or {}
    if "numbers" in inputs:
        try:
            numbers = [float(x) for x in inputs["numbers"].split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"inputs.numbers must be comma-separated numbers, got {inputs['numbers']!r}")
        if not numbers:
            raise ValueError("inputs.numbers is empty")
        fmt = lambda x: f"{x:g}"  # noqa: E731
        outputs = {
            "sum": fmt(sum(numbers)),
            "mean": fmt(sum(numbers) / len(numbers)),
            "min": fmt(min(numbers)),
            "max": fmt(max(numbers)),
        }
        result = " ".join(f"{k}={v}" for k, v in outputs.items())
    else:
        text = inputs.get("text") or task.get("description") or task.get("title") or ""
        outputs = {
            "words": str(len(text.split())),
            "characters": str(len(text)),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "reversed": text[::-1],
        }
        result = f"{outputs['words']} words, sha256 {outputs['sha256'][:16]}"
    if context is not None:
        outputs["contextItems"] = str(len(context))
    return result, outputs


class Agent:
    def __init__(self, gateway: Gateway, wait: int, ask_context: bool):
        self.gateway = gateway
        self.wait = wait
        self.ask_context = ask_context
        self.stopping = threading.Event()
        self.in_flight: set[str] = set()
        self.lock = threading.Lock()
        _, me = gateway.call("GET", "/agents/me")
        self.agent_id = me["id"]
        self.interval = max(0.05, (me.get("heartbeatIntervalMs") or 5000) / 1000)

    def log(self, line: str) -> None:
        print(f"[{self.agent_id}] {line}", flush=True)

    def heartbeat_loop(self) -> None:
        sequence = 0
        while not self.stopping.is_set():
            sequence += 1
            with self.lock:
                held = sorted(self.in_flight)
            try:
                self.gateway.call(
                    "POST", "/agents/me/heartbeat", {"inFlightTasks": held, "sequence": sequence}, timeout=10
                )
            except (ApiError, OSError) as e:
                self.log(f"heartbeat failed: {e}")
            # Twice per interval: one late beat is not three missed ones.
            self.stopping.wait(self.interval / 2)

    def run(self) -> None:
        threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True).start()
        self.log(f"polling {self.gateway.url}/tasks/next (heartbeat every {self.interval / 2:g} s)")
        while not self.stopping.is_set():
            try:
                status, assignment = self.gateway.call("GET", f"/tasks/next?wait={self.wait}", timeout=self.wait + 15)
            except (ApiError, OSError) as e:
                self.log(f"polling failed: {e}; trying again")
                self.stopping.wait(1)
                continue
            if status == 204 or not assignment:
                continue
            self.perform(assignment)

    def perform(self, a: dict[str, Any]) -> None:
        ref = {"goalId": a["goalId"], "taskId": a["taskId"], "attempt": a["attempt"]}
        key = f"{a['goalId']}/{a['taskId']}"
        try:
            self.gateway.call("POST", "/tasks/accept", ref)
        except ApiError as e:
            # Reassigned, cancelled or not ours any more: nothing to do.
            self.log(f"not accepting {key}#{a['attempt']}: {e}")
            return
        with self.lock:
            self.in_flight.add(key)
        began = time.monotonic()
        try:
            self.update(a, 0.1, "accepted")
            context = self.context(ref) if self.ask_context else None
            result, outputs = work(a["task"], context)
            self.update(a, 0.9, "computed")
            report = {"attempt": a["attempt"], "status": "COMPLETED", "result": result, "outputs": outputs}
        except Exception as e:  # the task's failure, reported as such
            report = {"attempt": a["attempt"], "status": "FAILED", "reason": str(e), "retryable": False}
        report["durationMs"] = int((time.monotonic() - began) * 1000)
        try:
            self.gateway.call("POST", f"/tasks/{a['goalId']}/{a['taskId']}/result", report)
            self.log(f"{key}#{a['attempt']} {report['status']}: {report.get('result') or report.get('reason')}")
        except ApiError as e:
            self.log(f"result of {key}#{a['attempt']} refused: {e}")
        finally:
            with self.lock:
                self.in_flight.discard(key)

    def update(self, a: dict[str, Any], progress: float, message: str) -> None:
        try:
            self.gateway.call(
                "POST",
                f"/tasks/{a['taskId']}/update",
                {"goalId": a["goalId"], "attempt": a["attempt"], "progress": progress, "message": message},
            )
        except ApiError as e:
            self.log(f"progress not recorded: {e}")

    def context(self, ref: dict[str, Any]) -> dict[str, str] | None:
        try:
            status, answer = self.gateway.call("POST", "/context/request", {**ref, "wait": 15}, timeout=30)
        except ApiError as e:
            self.log(f"no context: {e}")
            return None
        return answer.get("context") if status == 200 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("POLITY_URL", "http://127.0.0.1:4000"))
    parser.add_argument("--token", default=os.environ.get("POLITY_TOKEN"))
    parser.add_argument("--wait", type=int, default=20, help="long-poll seconds (at most 30)")
    parser.add_argument("--ask-context", action="store_true", help="ask the mayor for context before working")
    args = parser.parse_args()
    if not args.token:
        parser.error("no token: set POLITY_TOKEN or --token (npm run token -- --role agent --agent <id>)")
    try:
        agent = Agent(Gateway(args.url, args.token), min(max(args.wait, 0), 30), args.ask_context)
    except (ApiError, OSError) as e:
        print(f"cannot reach the gateway at {args.url} as this agent: {e}", file=sys.stderr)
        return 2

    def stop(signum: int, _frame: Any) -> None:
        agent.stopping.set()
        agent.log(f"stopping on signal {signum}")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        agent.run()
    except SystemExit:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
