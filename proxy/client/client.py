"""``ProxyClient``: a small async client of the proxy, for programs and for the CLI.

One ``aiohttp.ClientSession`` per client, opened by ``async with ProxyClient(...)``.
It speaks either dialect the proxy serves (``anthropic`` or ``openai``) and offers
``health()``, ``models()``, ``complete()`` (non-streaming) and ``stream()``, which returns
a ``TextStream``: an async iterator of answer text pieces as they arrive, whose
``completion`` is set once the stream has ended well::

    async with ProxyClient("http://127.0.0.1:3578") as client:
        stream = client.stream("Say hi", model="deepseek-chat")
        async for piece in stream:
            print(piece, end="", flush=True)
        print(stream.completion)

Thinking (reasoning) never comes out as text: pass ``on_thinking`` to see it as it
arrives; ``Completion.thinking`` holds it all. Every failure is a ``ProxyClientError``.

claudebridge's ``BridgeClient`` calls work too, so its users change only the import:
``health_check()``, ``list_models()`` and ``complete_sync()`` are synchronous (also in a
plain ``with``); ``complete()`` (whose result prints as its text) and ``stream()`` take
the model as optional; the URL, key and model default to ``PROXY_URL``, ``PROXY_API_KEY``
and ``PROXY_MODEL``, else claudebridge's ``BRIDGE_URL``, ``OPENROUTER_API_KEY`` and
``OPENROUTER_MODEL`` (``defaults.py``); without a model, the first the proxy lists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from proxy.client.blocking import BlockingRunner
from proxy.client.defaults import DEFAULT_URL, base_url, client_defaults
from proxy.client.wire import (
    Completion,
    Prompt,
    ProxyClientError,
    chat_path,
    check_dialect,
    end_marker,
    error_from_body,
    headers,
    json_object,
    model_ids,
    parse_answer,
    request_body,
    stream_reader,
)
from proxy.sse import SSEDecoder

__all__ = ["DEFAULT_URL", "ProxyClient", "TextStream"]
ThinkingCallback = Callable[[str], None]
T = TypeVar("T")


def _timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """A float is the longest silence allowed while reading; never a total limit, so a
    long generation is not cut."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    return aiohttp.ClientTimeout(total=None, connect=min(10.0, timeout), sock_read=timeout)


class ProxyClient:
    """An async client of the proxy at ``url`` (a trailing ``/v1`` or ``/api/v1`` is
    accepted and dropped). ``api_key`` goes as ``x-api-key`` (anthropic) or
    ``Authorization: Bearer`` (openai). ``url``, ``api_key`` and ``model`` left out come
    from the environment (``defaults.py``)."""

    def __init__(self, url: str | None = None, *, api_key: str | None = None,
                 dialect: str = "anthropic", timeout: float | aiohttp.ClientTimeout = 600.0,
                 max_connections: int = 100, model: str | None = None) -> None:
        defaults = client_defaults()
        self.url = base_url(url or defaults.url)
        self.api_key = api_key or defaults.api_key
        self.model = model or defaults.model
        self.dialect = check_dialect(dialect)
        self._timeout = _timeout(timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._runner: BlockingRunner | None = None  # for the synchronous calls
        self._twin: ProxyClient | None = None  # this client's settings on that runner

    async def __aenter__(self) -> ProxyClient:
        self._http()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await asyncio.to_thread(self.close_sync)

    # -- synchronous use: ``with ProxyClient() as client`` (claudebridge's BridgeClient) --

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        """Ends what the synchronous calls opened (``with`` does it on leaving)."""
        runner, twin = self._runner, self._twin
        self._runner = self._twin = None
        if runner is not None and twin is not None:
            runner.run(twin.close())
            runner.close()

    def _blocking(self, call: Callable[[ProxyClient], Awaitable[T]]) -> T:
        """``call`` run to its end on this client's private loop, with a twin of this
        client whose connections live on that loop."""
        if self._runner is None or self._twin is None:
            self._runner = BlockingRunner()
            self._twin = ProxyClient(self.url, api_key=self.api_key, dialect=self.dialect,
                                     timeout=self._timeout, model=self.model,
                                     max_connections=self._max_connections)
        twin = self._twin

        async def work() -> T:
            return await call(twin)
        return self._runner.run(work())

    def health_check(self) -> bool:
        """Whether the proxy answers ``/health`` with ``status: ok`` (never raises)."""
        async def check(client: ProxyClient) -> bool:
            try:
                return (await client.health()).get("status") == "ok"
            except ProxyClientError:
                return False
        return self._blocking(check)

    def list_models(self) -> list[str]:
        """``models()``, synchronously."""
        return self._blocking(lambda client: client.models())

    def complete_sync(self, prompt: str, stream: bool = False, *, model: str | None = None,
                      max_tokens: int = 1024, system: str | None = None) -> str:
        """The answer's text, synchronously; ``stream``: received as a stream."""
        async def ask(client: ProxyClient) -> str:
            if not stream:
                done = await client.complete(prompt, model=model, max_tokens=max_tokens,
                                             system=system)
                return done.text
            pieces = client.stream(prompt, model=model, max_tokens=max_tokens, system=system)
            return "".join([piece async for piece in pieces])
        return self._blocking(ask)

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use (inside a running event loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    # -- the endpoints --

    async def health(self) -> dict[str, Any]:
        """``GET /health``: the proxy's status and its upstream dialect."""
        async with self._request("GET", "/health") as response:
            return json_object(await response.read(), "/health")

    async def models(self) -> list[str]:
        """``GET /v1/models``: the model ids the proxy lists, in this client's dialect."""
        async with self._request("GET", "/v1/models") as response:
            return model_ids(json_object(await response.read(), "/v1/models"))

    async def model_for(self, model: str | None) -> str:
        """``model``, else this client's default, else the first the proxy lists."""
        if model or self.model:
            return model or str(self.model)
        listed = await self.models()
        if not listed:
            raise ProxyClientError(None, "no_model", f"no model given, and the proxy at "
                                   f"{self.url} lists none: pass model= or set PROXY_MODEL")
        self.model = listed[0]
        return self.model

    async def complete(self, prompt: str, *, model: str | None = None, max_tokens: int = 1024,
                       system: str | None = None) -> Completion:
        """One non-streaming answer (``str()`` of it is its text)."""
        model = await self.model_for(model)
        request = Prompt(prompt, model, max_tokens, system, stream=False)
        started = time.perf_counter()
        async with self._request("POST", chat_path(self.dialect), request) as response:
            ttfb = time.perf_counter() - started
            raw = await response.read()
        tally = parse_answer(self.dialect, raw, model)
        return tally.completion(ttfb, time.perf_counter() - started)

    def stream(self, prompt: str, *, model: str | None = None, max_tokens: int = 1024,
               system: str | None = None,
               on_thinking: ThinkingCallback | None = None) -> TextStream:
        """A streamed answer: iterate the returned ``TextStream`` for text pieces (the
        request is sent on the first ``__anext__``); its ``completion`` follows."""
        return TextStream(self, Prompt(prompt, model or "", max_tokens, system), on_thinking)

    # -- plumbing --

    @asynccontextmanager
    async def _request(self, method: str, path: str,
                       prompt: Prompt | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to one request, once it answered 2xx; otherwise the error it
        carried, or the connection's failure, as a ``ProxyClientError``."""
        body = request_body(self.dialect, prompt) if prompt is not None else None
        hdrs = headers(self.dialect, self.api_key, json_body=body is not None)
        try:
            async with self._http().request(method, self.url + path, data=body,
                                            headers=hdrs) as response:
                if response.status >= 400:
                    raise error_from_body(response.status, await response.read())
                yield response
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _connection_error(self.url, exc) from exc


def _connection_error(url: str, exc: BaseException) -> ProxyClientError:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProxyClientError(None, "connection_error", f"cannot reach the proxy at {url}: "
                                f"{exc.os_error.strerror or exc.os_error}")
    if isinstance(exc, TimeoutError):
        return ProxyClientError(None, "timeout", f"the proxy at {url} did not answer in time")
    return ProxyClientError(None, "connection_error",
                            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


class TextStream(AsyncIterator[str]):
    """The answer text of one streamed request, piece by piece. ``completion`` is None
    until the stream ended with its end marker; an error event, or a stream cut short,
    raises ``ProxyClientError`` from the iteration. ``aclose()`` (or ``async with``)
    drops the request early."""

    def __init__(self, client: ProxyClient, prompt: Prompt,
                 on_thinking: ThinkingCallback | None) -> None:
        self.completion: Completion | None = None
        self._pieces = self._run(client, prompt, on_thinking)

    def __aiter__(self) -> TextStream:
        return self

    async def __anext__(self) -> str:
        return await self._pieces.__anext__()

    async def aclose(self) -> None:
        await self._pieces.aclose()

    async def __aenter__(self) -> TextStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def _run(self, client: ProxyClient, prompt: Prompt,
                   on_thinking: ThinkingCallback | None) -> AsyncGenerator[str, None]:
        dialect = client.dialect
        prompt = replace(prompt, model=await client.model_for(prompt.model))
        started = time.perf_counter()
        ttfb: float | None = None
        reader = stream_reader(dialect, prompt.model)
        async with client._request("POST", chat_path(dialect), prompt) as response:
            decoder = SSEDecoder()
            async for chunk in response.content.iter_any():
                for event in decoder.feed(chunk):
                    for kind, piece in reader.feed(event):
                        if ttfb is None:
                            ttfb = time.perf_counter() - started
                        if kind == "text":
                            yield piece
                        elif on_thinking is not None:
                            on_thinking(piece)
                if reader.done:
                    break
        if not reader.done:
            raise ProxyClientError(None, "incomplete_stream",
                                   f"the stream ended before its {end_marker(dialect)}")
        self.completion = reader.tally.completion(ttfb, time.perf_counter() - started)
