"""`ovirt-backup demo`, the README's first command, does what it says on a clean state."""
import subprocess
import sys


def test_demo_runs_the_whole_cycle(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ovirt_backup_plugin.cli", "demo",
                           "--state-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, (out, proc.stderr)
    assert "run " in out and "ok; 6/6 VMs; localdb ok (6 written, 6 new)" in out
    assert "restored web01-1" in out and "restored web01-2" in out
    assert out.count("localdb ok (6 written, 0 new)") == 2          # the scheduled runs
    assert "serves another engine" in out and "refused as expected" in out
    assert "memory: 4096 → 8192 MB" in out
    assert (tmp_path / "catalog.sqlite").exists()
    assert "replay-secret" not in out + proc.stderr
