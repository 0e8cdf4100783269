"""A fake backboard.io API on 127.0.0.1, built to research/backboard.md section 4.

Resources belong to accounts; each ``X-API-Key`` names one (a missing header is 401, a
switch makes it 403; an unknown key 401 ``{"detail": "Invalid API key"}``); another
account's assistant or thread is a 404, an id that is not a UUID a FastAPI-style 422.
Routes under ``base_path`` (``/api``): assistants (create, list with ``name``, get,
delete), threads per assistant (create with ``{}`` or no body, list, get with its
messages, delete), ``POST /threads/{id}/messages`` (JSON, urlencoded or multipart;
streaming and not, in the recorded layouts; the model in ``backboard_model``), ``GET
/models`` (filters, ``limit`` 1..500) and ``/models/providers``. ``GET
/__mock/requests`` returns the journal without auth.

Per test: ``script(Reply | HTTPFault, ...)`` queues message answers (a ``Reply`` can hold
its stream after N pieces until the test releases it); ``fail(status, ...)`` makes a
route answer an HTTP error; ``wire`` switches the stream layout; ``calls`` is the journal
(route, account, fields as parsed, status); ``sent()`` the contents posted. Standalone:
``python -m tests.fakes.backboard_upstream --port N [--key K]...``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.backboard_answers import (
    CATALOGUE,
    answer_json,
    answer_stream,
    detail,
    fault_response,
    invalid,
    is_uuid,
    json_body,
    message_fields,
    models_answer,
    paging,
    providers_answer,
    thread_json,
)
from tests.fakes.backboard_model import (
    HTTPFault,
    Reply,
    Responder,
    Thread,
    Wire,
    default_responder,
    now,
    stored,
    words,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_KEY = "bb-test-key"
MEMORY_VALUES = {"auto", "off", "readonly"}


@dataclass
class Call:
    """One request as the fake saw it (the key itself is never kept)."""

    method: str
    path: str
    route: str
    account: str | None
    content_type: str
    query: dict[str, str]
    fields: dict[str, Any] = field(default_factory=dict)
    status: int = 0


class FakeBackboard:
    def __init__(self, keys: Mapping[str, str] | Iterable[str] = (DEFAULT_KEY,), *,
                 base_path: str = "/api", catalogue: list[dict[str, Any]] | None = None) -> None:
        self.accounts = dict(keys) if isinstance(keys, Mapping) else {
            key: f"account-{n}" for n, key in enumerate(keys, 1)}
        self.base_path = base_path.rstrip("/")
        self.catalogue = catalogue if catalogue is not None else [dict(m) for m in CATALOGUE]
        self.assistants: dict[str, dict[str, Any]] = {}
        self.assistant_account: dict[str, str] = {}
        self.threads: dict[str, Thread] = {}
        self.calls: list[Call] = []
        self.wire = Wire()
        self.responder: Responder = default_responder
        self.replies: deque[Reply | HTTPFault] = deque()
        self.faults: list[HTTPFault] = []
        self.missing_key_status = 401
        self.strict_thread_body = False  # an empty body to POST .../threads is a 422
        self.name_filter = True  # GET /assistants honours ?name=
        self.unknown_model = "http"  # "http": an HTTP error; "stream": an error frame; "accept"
        self.unknown_model_status = 404
        self.empty_content_status = 400
        self.context_limit: int | None = None  # words in a thread beyond which runs fail
        self.reject_concurrent = False  # a second message to a busy thread is a 409
        self.disconnects = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    # ------------------------------------------------------------------ life

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}{self.base_path}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ test helpers

    def script(self, *answers: Reply | HTTPFault) -> None:
        """Answers for the next message posts, in order, before the responder's."""
        self.replies.extend(answers)

    def fail(self, status: int, detail: Any = None, *, route: str = "messages", times: int = 1,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        """The next ``times`` requests to ``route`` (a name, a group or "*") get an error."""
        self.faults.append(HTTPFault(status, detail, headers or {}, route, times, raw))

    def routed(self, route: str) -> list[Call]:
        return [c for c in self.calls if _matches(c.route, route)]

    def sent(self) -> list[str]:
        """The content of every message post, in order."""
        return [c.fields.get("content", "") for c in self.routed("messages")]

    def threads_of(self, key: str) -> list[Thread]:
        return [t for t in self.threads.values() if t.account == self.accounts[key]]

    def assistants_of(self, key: str) -> list[dict[str, Any]]:
        account = self.accounts[key]
        return [a for aid, a in self.assistants.items() if self.assistant_account[aid] == account]

    # ------------------------------------------------------------------ app

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        base, add = self.base_path, self._route
        add(app, "POST", f"{base}/assistants", "assistants.create", self._create_assistant)
        add(app, "GET", f"{base}/assistants", "assistants.list", self._list_assistants)
        add(app, "GET", f"{base}/assistants/{{aid}}", "assistants.get", self._get_assistant)
        add(app, "DELETE", f"{base}/assistants/{{aid}}", "assistants.delete",
            self._delete_assistant)
        add(app, "POST", f"{base}/assistants/{{aid}}/threads", "threads.create",
            self._create_thread)
        add(app, "GET", f"{base}/assistants/{{aid}}/threads", "threads.list", self._list_threads)
        add(app, "GET", f"{base}/threads/{{tid}}", "threads.get", self._get_thread)
        add(app, "DELETE", f"{base}/threads/{{tid}}", "threads.delete", self._delete_thread)
        add(app, "POST", f"{base}/threads/{{tid}}/messages", "messages.create", self._message)
        add(app, "GET", f"{base}/models", "models.list", self._models)
        add(app, "GET", f"{base}/models/providers", "models.providers", self._providers)
        app.router.add_get(f"{base}/__mock/requests", self._journal)
        return app

    @staticmethod
    def _route(app: web.Application, method: str, path: str, name: str,
               handler: Handler) -> None:
        app.router.add_route(method, path, handler, name=name)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(f"{self.base_path}/__mock/"):
            return await handler(request)
        route = request.match_info.route.name or "unknown"
        key = request.headers.get("X-API-Key")
        call = Call(request.method, request.path, route, self.accounts.get(key or ""),
                    request.content_type, dict(request.query))
        self.calls.append(call)
        response = await self._gate(request, call, key) or await self._handle(handler, request)
        call.status = response.status
        return response

    async def _handle(self, handler: Handler, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return detail(404, "Not Found")
        except web.HTTPMethodNotAllowed:
            return detail(405, "Method Not Allowed")

    async def _gate(self, request: web.Request, call: Call,
                    key: str | None) -> web.Response | None:
        if call.route == "unknown":
            return None  # the router's 404/405, in FastAPI's words
        if not key:
            return detail(self.missing_key_status, "Not authenticated")
        if call.account is None:
            return detail(401, "Invalid API key")
        for fault in self.faults:
            if _matches(call.route, fault.route):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault_response(fault)
        return None

    async def _journal(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(c) for c in self.calls])

    # ------------------------------------------------------------------ assistants

    def _account(self, request: web.Request) -> str:
        return self.accounts[request.headers["X-API-Key"]]

    def _own_assistant(self, request: web.Request) -> dict[str, Any] | web.Response:
        aid = request.match_info["aid"]
        if not is_uuid(aid):
            return invalid(["path", "assistant_id"], "Input should be a valid UUID",
                           "uuid_parsing", aid)
        if self.assistant_account.get(aid) != self._account(request):
            return detail(404, "Assistant not found")
        return self.assistants[aid]

    async def _create_assistant(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("name") if isinstance(body, dict) else None
        self.calls[-1].fields = body if isinstance(body, dict) else {}
        if not isinstance(name, str):
            return invalid(["body", "name"], "Field required", "missing")
        if not 1 <= len(name) <= 255:
            return invalid(["body", "name"], "String should have 1 to 255 characters",
                           "string_length", name)
        aid = str(uuid.uuid4())
        prompt = body.get("system_prompt") or body.get("description")
        self.assistants[aid] = {
            "assistant_id": aid, "name": name, "description": prompt, "system_prompt": prompt,
            "tools": body.get("tools"), "tok_k": body.get("tok_k", 10),
            "embedding_provider": None, "embedding_model_name": None, "embedding_dims": None,
            "created_at": now()}
        self.assistant_account[aid] = self._account(request)
        return web.json_response(self.assistants[aid])

    async def _list_assistants(self, request: web.Request) -> web.Response:
        skip, limit = paging(request, 200)
        if isinstance(skip, web.Response):
            return skip
        account = self._account(request)
        found = [a for aid, a in self.assistants.items() if self.assistant_account[aid] == account]
        name = request.query.get("name")
        if name is not None and self.name_filter:
            found = [a for a in found if a["name"] == name]
        return web.json_response(found[skip:skip + limit])

    async def _get_assistant(self, request: web.Request) -> web.Response:
        found = self._own_assistant(request)
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _delete_assistant(self, request: web.Request) -> web.Response:
        found = self._own_assistant(request)
        if isinstance(found, web.Response):
            return found
        aid = found["assistant_id"]
        del self.assistants[aid], self.assistant_account[aid]
        return web.json_response({"message": "Assistant deleted successfully",
                                  "assistant_id": aid, "deleted_at": now()})

    # ------------------------------------------------------------------ threads

    def _own_thread(self, request: web.Request) -> Thread | web.Response:
        tid = request.match_info["tid"]
        if not is_uuid(tid):
            return invalid(["path", "thread_id"], "Input should be a valid UUID",
                           "uuid_parsing", tid)
        thread = self.threads.get(tid)
        if thread is None or thread.account != self._account(request):
            return detail(404, "Thread not found")
        return thread

    async def _create_thread(self, request: web.Request) -> web.Response:
        found = self._own_assistant(request)
        if isinstance(found, web.Response):
            return found
        raw = await request.read()
        if not raw.strip() and self.strict_thread_body:
            return invalid(["body"], "Field required", "missing")
        if raw.strip():
            body = await json_body(request)
            if isinstance(body, web.Response):
                return body
        tid = str(uuid.uuid4())
        self.threads[tid] = Thread(tid, found["assistant_id"], self._account(request), now())
        return web.json_response(thread_json(self.threads[tid]))

    async def _list_threads(self, request: web.Request) -> web.Response:
        found = self._own_assistant(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response([thread_json(t) for t in self.threads.values()
                                  if t.assistant_id == found["assistant_id"]])

    async def _get_thread(self, request: web.Request) -> web.Response:
        thread = self._own_thread(request)
        if isinstance(thread, web.Response):
            return thread
        return web.json_response(thread_json(thread, with_messages=True))

    async def _delete_thread(self, request: web.Request) -> web.Response:
        thread = self._own_thread(request)
        if isinstance(thread, web.Response):
            return thread
        del self.threads[thread.thread_id]
        return web.json_response({"message": "Thread deleted successfully",
                                  "thread_id": thread.thread_id, "deleted_at": now()})

    # ------------------------------------------------------------------ messages

    async def _message(self, request: web.Request) -> web.StreamResponse:
        thread = self._own_thread(request)
        if isinstance(thread, web.Response):
            return thread
        fields = await message_fields(request)
        if isinstance(fields, web.Response):
            return fields
        self.calls[-1].fields = fields
        refused = self._refusal(thread, fields)
        if refused is not None:
            return refused
        answer = self.replies.popleft() if self.replies else None
        if isinstance(answer, HTTPFault):
            return fault_response(answer)
        content, provider, model = fields["content"], fields["llm_provider"], fields["model_name"]
        thread.messages.append(stored("user", content, input_tokens=words(content)))
        if not fields["send_to_llm"]:
            return await self._saved(request, fields["stream"])
        reply = answer or self.responder(thread, content, provider, model)
        if self.context_limit is not None and sum(
                words(m["content"]) for m in thread.messages) > self.context_limit:
            reply = Reply(fault="error", fault_after=0, fault_message=(
                f"context_length_exceeded: this thread holds more than {self.context_limit}"
                " tokens"))
        if self._unknown(provider, model) and self.unknown_model == "stream":
            reply = Reply(fault="error", fault_after=0,
                          fault_message=f"model_not_found: {model} does not exist")
        thread.busy = True
        try:
            if fields["stream"]:
                return await answer_stream(self, request, thread, reply, provider, model)
            return await answer_json(self, request, thread, reply, provider, model)
        finally:
            thread.busy = False

    def _refusal(self, thread: Thread, fields: dict[str, Any]) -> web.Response | None:
        if not fields["content"] and not fields["files"]:
            if self.empty_content_status == 422:
                return invalid(["body", "content"], "Field required", "missing")
            return detail(self.empty_content_status, "Content is required")
        if str(fields["memory"]).lower() not in MEMORY_VALUES:
            return invalid(["body", "memory"], "Input should be 'Auto', 'off' or 'Readonly'",
                           "enum", fields["memory"])
        if self.unknown_model == "http" and self._unknown(fields["llm_provider"],
                                                         fields["model_name"]):
            return detail(self.unknown_model_status,
                          f"model_not_found: model '{fields['model_name']}' does not exist "
                          f"for provider '{fields['llm_provider']}'")
        if self.reject_concurrent and thread.busy:
            return detail(409, "Thread is busy with another run")
        return None

    def _unknown(self, provider: str, model: str) -> bool:
        return not any(m["provider"] == provider and m["name"] == model
                       for m in self.catalogue)

    async def _saved(self, request: web.Request, stream: bool) -> web.StreamResponse:
        if not stream:
            return web.json_response({"message": "Message saved", "content": None,
                                      "status": "COMPLETED", "timestamp": now(),
                                      "memory_operation_id": None})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(self.wire.frame({"type": "message_saved",
                                              "memory_operation_id": None}))
        return response

    # ------------------------------------------------------------------ models

    async def _models(self, request: web.Request) -> web.Response:
        return models_answer(self.catalogue, request.query)

    async def _providers(self, request: web.Request) -> web.Response:
        return providers_answer(self.catalogue)


def _matches(route: str, wanted: str) -> bool:
    return wanted == "*" or route == wanted or route.startswith(wanted + ".")


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeBackboard(args.key or [DEFAULT_KEY], base_path=args.base_path)
    fake.wire.chunk_size, fake.wire.delay = args.chunk_size, args.delay
    if args.any_model:
        fake.unknown_model = "accept"
    url = await fake.start(args.host, args.port)
    print(f"fake backboard listening on {url}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake backboard.io API for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", action="append", help=f"an API key (default {DEFAULT_KEY})")
    parser.add_argument("--base-path", default="/api")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--any-model", action="store_true", help="accept every model name")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
