"""Tools for a backend that has none: the client's tools described in the system prompt,
and earlier tool calls and results written as text (``describe``, ``render``); the
model's answer is read back by ``proxy.filters.tool_sniffer``. Sans-I/O."""
