"""lpmatte.devices.keep_freed_memory: freed large blocks stay in the process for reuse.

Each case runs in its own interpreter, since the setting is process-wide.
"""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or sys.platform != "linux",
                                reason="glibc malloc on Linux only")

# resident MB after a 256 MB block was written and freed, minus before it
PROBE = """
import sys, torch
from lpmatte.devices import keep_freed_memory
def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
took = keep_freed_memory() if sys.argv[1] == "keep" else False
before = resident_mb()
block = torch.ones(64 * 2**20)
del block
print(took, resident_mb() - before)
"""


def run_probe(mode: str, **env) -> tuple[bool, float]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LPMATTE_MALLOC")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", float(out[1])


def test_freed_block_is_kept_for_reuse():
    took, kept_mb = run_probe("keep")
    assert took
    assert kept_mb > 200


def test_without_it_glibc_hands_the_block_back():
    took, kept_mb = run_probe("plain")
    assert not took
    assert kept_mb < 50


def test_lpmatte_malloc_system_leaves_glibc_alone():
    took, kept_mb = run_probe("keep", LPMATTE_MALLOC="system")
    assert not took
    assert kept_mb < 50


def test_a_users_own_glibc_setting_wins():
    took, _ = run_probe("keep", MALLOC_TRIM_THRESHOLD_="1000000")
    assert not took


def test_the_inference_commands_turn_it_on(monkeypatch, tmp_path):
    import lpmatte.devices
    from lpmatte.cli import main

    calls = []
    monkeypatch.setattr(lpmatte.devices, "keep_freed_memory", lambda: calls.append(1) or True)
    assert main(["matte", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out")]) != 0
    assert calls == [1]
    assert main(["evaluate", "--pred", str(tmp_path), "--gt", str(tmp_path / "no")]) != 0
    assert calls == [1]  # scoring files runs no model
