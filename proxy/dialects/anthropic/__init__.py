"""Anthropic Messages: the dialect of Claude Code and the anthropic SDK."""
