"""A client of the proxy: the ``ProxyClient`` library and ``python -m proxy.client``.

``ProxyClient`` (``client.py``) does the I/O, ``wire.py`` knows the two dialects without
any, and ``cli.py`` is the command line.
"""

from proxy.client.client import ProxyClient, TextStream
from proxy.client.defaults import DEFAULT_URL
from proxy.client.wire import Completion, ProxyClientError

__all__ = ["DEFAULT_URL", "Completion", "ProxyClient", "ProxyClientError", "TextStream"]
