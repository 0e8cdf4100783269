"""What a canonical request asks of the web tools, and the request its backend model gets.

Sans-I/O. A request asks for them with Anthropic server tools (``Request.server_tools``)
or OpenAI's ``web_search_options``. With Tavily set up, the model is offered them as two
ordinary functions beside the client's own tools (``offer``); without, they are left out
and the client is told why (``left_out`` and ``NO_KEY_NOTE``).
"""

from __future__ import annotations

from dataclasses import replace

from proxy.canonical import Request, ToolChoice
from proxy.errors import InvalidRequest
from proxy.web_tools.spec import (
    FETCH,
    SEARCH,
    WebToolsSpec,
    model_functions,
    parse_anthropic_tools,
    parse_web_search_options,
)

# Calls of one tool in one answer when the client set no max_uses: a model that fans out
# parallel searches round after round must not spend the Tavily plan on one answer.
DEFAULT_MAX_USES = 20
NO_KEY_NOTE = ("[llm-dialect-proxy: web search and fetch are not available here: no Tavily "
               "key is set (TAVILY_API_KEY), so {tools} {verb} left out and this answer comes "
               "from the model alone.]\n\n")


def wants_web_tools(request: Request) -> bool:
    return bool(request.server_tools) or request.web_search_options is not None


def asked_for(request: Request) -> tuple[str, ...]:
    """The web tools a request asks for, as it named them (for the dropped header)."""
    names = tuple(str(tool.get("type")) for tool in request.server_tools)
    return (*names, "web_search_options") if request.web_search_options is not None else names


def left_out(request: Request) -> tuple[Request, str]:
    """The request without its web tools, and the note that tells the client so."""
    names = asked_for(request)
    note = NO_KEY_NOTE.format(tools=" and ".join(names), verb="was" if len(names) == 1
                              else "were")
    request = replace(request, server_tools=(), web_search_options=None)
    if not request.tools or forces_web_tool(request):  # a choice of nothing left to choose
        request = replace(request, tool_choice=None, parallel_tool_calls=None)
    return request, note


def forces_web_tool(request: Request) -> bool:
    choice = request.tool_choice
    return choice is not None and choice.type == "tool" and choice.name in (SEARCH, FETCH)


def after_a_round(request: Request) -> Request:
    """The request for the rounds after the first: a client that forced a web tool asked
    for one call of it, not for a model that must call it round after round."""
    if forces_web_tool(request):
        return replace(request, tool_choice=ToolChoice("auto"))
    return request


def offer(request: Request) -> tuple[Request, WebToolsSpec]:
    """The request the backend model gets (the web tools as functions after the client's
    own, the server tool definitions gone) and what the client asked of them. A client
    tool of the same name is refused (``InvalidRequest``): the model could not tell them
    apart."""
    own = [{"name": tool.name} for tool in request.tools]
    spec = parse_anthropic_tools([*request.server_tools, *own])
    if request.web_search_options is not None and spec.search is None:
        spec = replace(spec, search=parse_web_search_options(request.web_search_options))
    offered = {SEARCH: spec.search, FETCH: spec.fetch}
    for tool in request.tools:
        if offered.get(tool.name) is not None:
            raise InvalidRequest(f"tools: the tool name {tool.name} is used twice (web search "
                                 "is on, and it offers a tool of that name).", param="tools")
    spec = _with_default_limits(spec)
    functions = model_functions(spec)
    return replace(request, tools=request.tools + functions, server_tools=(),
                   web_search_options=None), spec


def _with_default_limits(spec: WebToolsSpec) -> WebToolsSpec:
    search, fetch = spec.search, spec.fetch
    if search is not None and search.max_uses is None:
        search = replace(search, max_uses=DEFAULT_MAX_USES)
    if fetch is not None and fetch.max_uses is None:
        fetch = replace(fetch, max_uses=DEFAULT_MAX_USES)
    return WebToolsSpec(search, fetch)
