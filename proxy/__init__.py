"""llm-dialect-proxy: any LLM client to any LLM backend."""

__version__ = "0.1.0"
