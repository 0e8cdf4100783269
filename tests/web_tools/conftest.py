"""The fake Tavily server for the web tools tests."""

from tests.fakes.tavily import fake_tavily

__all__ = ["fake_tavily"]
