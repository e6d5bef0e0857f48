"""A local stand-in for the Gemini Developer API, for tests that run the real google-genai SDK.

It speaks the REST shapes the SDK (google-genai 3.4) sends and parses:

- POST /{version}/models/{model}:generateContent → GenerateContentResponse with
  candidates[].content.parts[].text, finishReason, promptFeedback.blockReason, usageMetadata
- POST /{version}/models/{model}:batchGenerateContent with batch.inputConfig.requests.requests[]
  → an operation {name: "batches/…", metadata: {state: BATCH_STATE_PENDING, …}}
- GET /{version}/batches/{id} → the same, with metadata.output.inlinedResponses.inlinedResponses
  once the test completes the batch
- GET /{version}/batches → {operations: […]}

Failures are scripted: push behaviours (429 with a RetryInfo retryDelay, 500, a slow answer
for client timeouts, malformed JSON text, schema-violating JSON, safety blocks) and each
request takes the next one; with nothing scripted the answer is a valid verdict. Every
request is recorded so tests can count what was really sent.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_VERDICT: dict[str, Any] = {
    "is_match": True,
    "confidence": 0.93,
    "candidate_type": "model_shot",
    "matched_features": ["logo shape and placement", "two-way zipper", "diagonal quilting"],
    "mismatched_features": [],
    "reasoning": "Same logo, zipper pulls and quilting direction; colour variant agrees.",
}


@dataclass
class Behaviour:
    kind: str  # ok | 429 | 500 | slow | malformed | schema | safety_prompt | safety_finish | max_tokens
    verdict: dict[str, Any] | None = None
    retry_delay_s: float | None = None
    retry_after_header: bool = False
    delay_s: float = 0.0
    text: str = ""


def ok(verdict: dict[str, Any] | None = None, **changes: Any) -> Behaviour:
    return Behaviour("ok", verdict={**(verdict or DEFAULT_VERDICT), **changes})


def rate_limited(retry_delay_s: float = 2.0, *, header: bool = False) -> Behaviour:
    return Behaviour("429", retry_delay_s=retry_delay_s, retry_after_header=header)


def server_error() -> Behaviour:
    return Behaviour("500")


def slow(delay_s: float) -> Behaviour:
    return Behaviour("slow", delay_s=delay_s)


def malformed(text: str = '{"is_match": true, "confidence": 0.9, "reasoning": "cut off') -> Behaviour:
    return Behaviour("malformed", text=text)


def schema_violation(**changes: Any) -> Behaviour:
    bad = {**DEFAULT_VERDICT, "confidence": 1.7, "candidate_type": "mannequin-ish"}
    bad.update(changes)
    return Behaviour("schema", verdict=bad)


def safety_prompt() -> Behaviour:
    return Behaviour("safety_prompt")


def safety_finish() -> Behaviour:
    return Behaviour("safety_finish")


@dataclass
class Recorded:
    method: str
    path: str
    kind: str  # generate | batch_create | batch_get | batch_list | unknown
    model: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    api_key: str = ""


@dataclass
class FakeBatch:
    name: str
    model: str
    display_name: str
    requests: list[dict[str, Any]]
    state: str = "BATCH_STATE_PENDING"
    responses: list[dict[str, Any]] | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


class FakeGemini:
    """Start with `start()` (returns the base URL), stop with `stop()`; thread-safe."""

    def __init__(self, *, prompt_tokens: int = 1000, output_tokens: int = 200) -> None:
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.default_verdict: dict[str, Any] = dict(DEFAULT_VERDICT)
        self.verdict_by_model: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.batches: dict[str, FakeBatch] = {}
        self._script: deque[Behaviour] = deque()
        self._model_scripts: dict[str, deque[Behaviour]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def push(self, *behaviours: Behaviour, model: str | None = None) -> None:
        with self._lock:
            queue = self._script if model is None else self._model_scripts.setdefault(model, deque())
            queue.extend(behaviours)

    def generate_count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if r.kind == "generate" and (model is None or r.model == model)
            )

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.kind == kind)

    def complete_batch(self, name: str | None = None) -> None:
        """Finish one (or every) pending batch: each inlined request takes the next scripted behaviour."""
        with self._lock:
            for batch in self.batches.values():
                if name is not None and batch.name != name:
                    continue
                if batch.state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                    continue
                responses = []
                for item in batch.requests:
                    behaviour = self._next(batch.model)
                    entry: dict[str, Any] = {}
                    if behaviour.kind in ("429", "500", "slow"):
                        code = 429 if behaviour.kind == "429" else 500
                        entry["error"] = {"code": code, "message": "scripted failure", "status": "INTERNAL"}
                    else:
                        entry["response"] = self._response_body(behaviour, batch.model)
                    if item.get("metadata"):
                        entry["metadata"] = item["metadata"]
                    responses.append(entry)
                batch.responses = responses
                batch.state = "BATCH_STATE_SUCCEEDED"

    def fail_batch(self, name: str) -> None:
        with self._lock:
            self.batches[name].state = "BATCH_STATE_FAILED"

    # --- behaviour -------------------------------------------------------------------------------
    def _next(self, model: str) -> Behaviour:
        queue = self._model_scripts.get(model)
        if queue:
            return queue.popleft()
        if self._script:
            return self._script.popleft()
        return ok(self.verdict_by_model.get(model, self.default_verdict))

    def _usage(self, *, output: bool = True) -> dict[str, Any]:
        usage = {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}
        if output:
            usage["candidatesTokenCount"] = self.output_tokens
            usage["totalTokenCount"] = self.prompt_tokens + self.output_tokens
        return usage

    def _response_body(self, behaviour: Behaviour, model: str) -> dict[str, Any]:
        if behaviour.kind == "safety_prompt":
            return {
                "promptFeedback": {
                    "blockReason": "SAFETY",
                    "safetyRatings": [{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH"}],
                },
                "usageMetadata": self._usage(output=False),
                "modelVersion": model,
            }
        if behaviour.kind == "safety_finish":
            return {
                "candidates": [
                    {
                        "finishReason": "SAFETY",
                        "index": 0,
                        "safetyRatings": [
                            {
                                "category": "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                                "probability": "HIGH",
                                "blocked": True,
                            }
                        ],
                    }
                ],
                "usageMetadata": self._usage(output=False),
                "modelVersion": model,
            }
        if behaviour.kind == "malformed":
            text = behaviour.text
        else:
            text = json.dumps(behaviour.verdict or self.default_verdict, ensure_ascii=False)
        return {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": self._usage(),
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:16],
        }

    def _batch_json(self, batch: FakeBatch) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{batch.model}",
            "displayName": batch.display_name,
            "state": batch.state,
            "createTime": batch.created,
            "updateTime": batch.created,
            "name": batch.name,
        }
        body: dict[str, Any] = {"name": batch.name, "metadata": metadata}
        if batch.responses is not None:
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": batch.responses}}
            body["done"] = True
        return body


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeGemini
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        return json.loads(self.rfile.read(length) or b"{}")

    def _record(self, kind: str, model: str = "", body: dict[str, Any] | None = None) -> None:
        fake = self.server_fake
        with fake._lock:
            fake.requests.append(
                Recorded(
                    method=self.command,
                    path=self.path,
                    kind=kind,
                    model=model,
                    body=body or {},
                    api_key=self.headers.get("x-goog-api-key", ""),
                )
            )

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server_fake
        path = self.path.split("?", 1)[0]
        body = self._body()
        parts = path.strip("/").split("/", 1)
        rest = parts[1] if len(parts) == 2 else ""
        if not self.headers.get("x-goog-api-key"):
            error = {"code": 401, "message": "API key missing", "status": "UNAUTHENTICATED"}
            self._send(401, {"error": error})
            return
        if rest.startswith("models/") and rest.endswith(":generateContent"):
            model = rest[len("models/") : -len(":generateContent")]
            self._record("generate", model, body)
            with fake._lock:
                behaviour = fake._next(model)
            self._answer_generate(behaviour, model)
            return
        if rest.startswith("models/") and rest.endswith(":batchGenerateContent"):
            model = rest[len("models/") : -len(":batchGenerateContent")]
            self._record("batch_create", model, body)
            batch_in = body.get("batch", {})
            requests = batch_in.get("inputConfig", {}).get("requests", {}).get("requests", [])
            name = f"batches/{uuid.uuid4().hex[:12]}"
            batch = FakeBatch(
                name=name, model=model, display_name=batch_in.get("displayName", ""), requests=requests
            )
            with fake._lock:
                fake.batches[name] = batch
                answer = fake._batch_json(batch)
            self._send(200, answer)
            return
        self._record("unknown", body=body)
        self._send(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})

    def do_GET(self) -> None:  # noqa: N802
        fake = self.server_fake
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/", 1)
        rest = parts[1] if len(parts) == 2 else ""
        if rest.startswith("batches/"):
            self._record("batch_get")
            with fake._lock:
                batch = fake.batches.get(rest)
                answer = fake._batch_json(batch) if batch else None
            if answer is None:
                self._send(404, {"error": {"code": 404, "message": "batch not found", "status": "NOT_FOUND"}})
            else:
                self._send(200, answer)
            return
        if rest == "batches":
            self._record("batch_list")
            with fake._lock:
                answer = {"operations": [fake._batch_json(b) for b in fake.batches.values()]}
            self._send(200, answer)
            return
        self._send(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})

    def _answer_generate(self, behaviour: Behaviour, model: str) -> None:
        fake = self.server_fake
        if behaviour.kind == "429":
            delay = behaviour.retry_delay_s or 0.0
            headers = {"Retry-After": str(int(delay))} if behaviour.retry_after_header else {}
            details = (
                []
                if behaviour.retry_after_header
                else [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"}]
            )
            self._send(
                429,
                {
                    "error": {
                        "code": 429,
                        "message": "Resource has been exhausted (e.g. check quota).",
                        "status": "RESOURCE_EXHAUSTED",
                        "details": details,
                    }
                },
                headers,
            )
            return
        if behaviour.kind == "500":
            self._send(500, {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}})
            return
        if behaviour.kind == "slow":
            time.sleep(behaviour.delay_s)
        with fake._lock:
            body = fake._response_body(behaviour, model)
        self._send(200, body)
