"""Upstreams: one module per kind of backend; the only place that talks to one."""
