"""The aiohttp edge: handlers, middlewares and the streaming writer."""
