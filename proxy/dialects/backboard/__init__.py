"""backboard.io's assistant/thread API (research/backboard.md), as far as it can be sans-I/O:
its stream and replies as canonical events, its errors, its model names and list, its
request bodies, and the conversation keys that map a client's history to a thread."""
