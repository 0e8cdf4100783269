"""Dialects: request, stream and error shapes, one package each; sans-I/O."""
