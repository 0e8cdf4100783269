"""OpenAI Chat Completions: the dialect of the openai SDK and OpenAI-compatible servers."""
