"""Seeing what the proxy does: the per-request trace, logs, metrics and session logs."""
