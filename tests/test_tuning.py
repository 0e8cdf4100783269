"""The process tuning a server gets at start (proxy/tuning.py), each in a fresh
interpreter so that this one keeps its defaults."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import gc, json
from proxy.tuning import GC_THRESHOLD, tune_process, tune_malloc
tune_process()
print(json.dumps({"gc": gc.get_threshold()[0] == GC_THRESHOLD, "frozen": gc.get_freeze_count() > 0,
                  "malloc": tune_malloc()}))
"""


def probe(**env: str) -> dict[str, bool]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**environ, **env}, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    result: dict[str, bool] = json.loads(out)
    return result


def test_the_collector_runs_less_often_and_skips_what_start_up_made() -> None:
    found = probe()
    assert found["gc"] and found["frozen"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_large_blocks_get_pages_of_their_own_on_glibc() -> None:
    assert probe()["malloc"] is True


@pytest.mark.parametrize("setting", [
    {"MALLOC_MMAP_THRESHOLD_": "262144"},
    {"GLIBC_TUNABLES": "glibc.malloc.check=0:glibc.malloc.mmap_threshold=262144"}])
def test_an_explicit_malloc_setting_is_left_alone(setting: dict[str, str]) -> None:
    assert probe(**setting)["malloc"] is False
