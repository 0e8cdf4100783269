"""Web search and fetch for backends that have no server tools of their own, through Tavily.

A client may ask for Anthropic's server tools (``web_search_*``, ``web_fetch_*``) or for
OpenAI's ``web_search_options``. For a backend that cannot run them, the proxy offers the
model two ordinary functions, runs the calls itself and shows the client Anthropic's
``server_tool_use`` and ``web_*_tool_result`` blocks. The pieces, one job each:

    loop.py       the loop: one client response, rounds of the model, the calls run
                  between them (Upstreams.stream wraps a translated request's stream in it)
    rounds.py     the events the client sees, renumbered across rounds, and the
                  conversation the next round is asked with
    offer.py      what a request asks for; the request the model gets (or, without a key,
                  the request without them and the note that says so)
    configured.py the Tavily settings from the proxy's settings, checked at start
    settings.py   TavilySettings: the frozen, validated Tavily settings
    spec.py       what the client asked for (max_uses, domains, location) and the functions
                  offered to the model
    urls.py       which URLs web_fetch may fetch: found in the conversation, public, allowed
    results.py    Tavily answers -> canonical result content, and the text the model reads
    session.py    one client response's state: uses left, known URLs, counts, the calls
    history.py    server tool blocks a client sends back, as a function call and its result
    tavily.py     the Tavily HTTP client (aiohttp; the only module here doing network I/O)
    resolve.py    the DNS half of the URL rule (asyncio)

Everything but ``loop.py``, ``tavily.py`` and ``resolve.py`` is sans-I/O, like the dialects
(``configured.py`` reads the proxy's settings, not the environment).
"""
