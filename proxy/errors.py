"""The proxy's exception tree, and nothing else.

Every failure the proxy reports to a client is one of these. Only the edge turns them
into responses (an HTTP error body before the stream started, an in-stream error event
after), and it does so through each dialect's own error renderer, so the tree speaks in
canonical *kinds*, never in one dialect's type strings.

    ProxyError                      status, kind, message
    ├── ClientError                 the client's request is at fault (no retry helps)
    │   ├── InvalidRequest          400 invalid_request (names the field: ``param``)
    │   ├── AuthenticationFailed    401 authentication
    │   ├── Forbidden               403 permission: this key may not use that model
    │   ├── NotFound                404 not_found
    │   ├── RequestTimeout          408 timeout: the body did not arrive in time
    │   ├── RequestTooLarge         413 request_too_large
    │   ├── UnsupportedEncoding     415 invalid_request: a body encoding we do not inflate
    │   └── RateLimited             429 rate_limit: an inbound key's requests or tokens
    ├── NotConfigured               503 api_error: no upstream set
    ├── StoreUnavailable            503 api_error: the state store is down or too slow
    └── UpstreamError               the upstream failed us (clients may retry)
        ├── UpstreamStatusError     the upstream answered an HTTP error; status mapped
        ├── UpstreamUnreachable     502: connect failed
        ├── UpstreamTimeout         504: connect or read timed out
        ├── UpstreamProtocolError   502: a malformed frame, a cut stream
        └── UpstreamStreamError     an error event inside a 200 stream

Canonical kinds: ``invalid_request``, ``authentication``, ``permission``, ``not_found``,
``request_too_large``, ``rate_limit``, ``api_error``, ``overloaded``, ``timeout``.
This module is sans-I/O: stdlib only.
"""

from __future__ import annotations


class ProxyError(Exception):
    """Base: an HTTP status, a canonical kind and a message safe to show a client."""

    status: int = 500
    kind: str = "api_error"

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        self.retry_after: str | None = None


class ClientError(ProxyError):
    """The request itself is wrong; retrying it unchanged cannot help."""


class InvalidRequest(ClientError):
    status = 400
    kind = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class AuthenticationFailed(ClientError):
    status = 401
    kind = "authentication"


class Forbidden(ClientError):
    status = 403
    kind = "permission"


class NotFound(ClientError):
    status = 404
    kind = "not_found"


class RequestTimeout(ClientError):
    status = 408
    kind = "timeout"


class RequestTooLarge(ClientError):
    status = 413
    kind = "request_too_large"


class UnsupportedEncoding(ClientError):
    status = 415
    kind = "invalid_request"


class RateLimited(ClientError):
    """An inbound key spent its requests or tokens for this minute; ``retry_after`` says
    when the next minute starts."""

    status = 429
    kind = "rate_limit"


class NotConfigured(ProxyError):
    status = 503
    kind = "api_error"


class StoreUnavailable(ProxyError):
    """The state store did not answer (down, or slower than its timeout); the message
    names the store (never its password)."""

    status = 503
    kind = "api_error"


class UpstreamError(ProxyError):
    """The upstream failed; the status we report is already mapped for our client."""

    status = 502
    kind = "api_error"


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status before streaming."""

    raw: bytes = b""  # the error body as the upstream sent it


class UpstreamUnreachable(UpstreamError):
    status = 502
    kind = "api_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout"


class UpstreamProtocolError(UpstreamError):
    """The upstream broke its own wire format: a malformed frame or a stream cut short."""

    status = 502
    kind = "api_error"


class UpstreamStreamError(UpstreamError):
    """The upstream reported an error inside its (already 200) stream."""


def status_for_upstream(upstream_status: int) -> tuple[int, str]:
    """Map an upstream HTTP error status to (our status, canonical kind).

    Transient faults stay 5xx or 429 on purpose: Claude Code answers a 400 by stripping
    features and resending blindly, and both SDKs retry 429/5xx with backoff.
    """
    if 300 <= upstream_status < 400:
        return 502, "api_error"  # redirects are not followed: they could carry the key away
    if upstream_status == 429:
        return 429, "rate_limit"
    if upstream_status in (503, 529):
        return 529, "overloaded"
    if upstream_status == 504:
        return 504, "timeout"
    if upstream_status >= 500:
        return (502, "api_error") if upstream_status == 502 else (500, "api_error")
    return upstream_status, _CLIENT_KINDS.get(upstream_status, "invalid_request")


_CLIENT_KINDS = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "request_too_large",
    422: "invalid_request",
}
