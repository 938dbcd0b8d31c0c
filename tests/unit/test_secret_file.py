"""The service secret file: created 0600 whatever the umask, reused once made, and processes
racing to create it all end up with the same secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from avrec.service.settings import ServiceSettings, private_file, service_secret

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_created_0600_under_a_permissive_umask(avrec_home):
    old = os.umask(0)
    try:
        first = service_secret(ServiceSettings(model_dir=Path(".")))
    finally:
        os.umask(old)
    path = avrec_home / "secret"
    assert mode(path) == 0o600
    assert len(first) == 64 and path.read_bytes() == first
    assert service_secret(ServiceSettings(model_dir=Path("."))) == first  # made once
    assert [p.name for p in avrec_home.iterdir()] == ["secret"]  # no temporary file left


def test_an_explicit_secret_writes_no_file(avrec_home):
    assert service_secret(ServiceSettings(model_dir=Path("."), secret="given")) == b"given"
    assert not (avrec_home / "secret").exists()


def test_a_loosened_secret_file_is_tightened_and_kept(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"old-secret")
    path.chmod(0o644)
    assert private_file(path, lambda: b"new") == b"old-secret"
    assert mode(path) == 0o600


RACER = """
import os, sys, time
from pathlib import Path
from avrec.service.settings import ServiceSettings, service_secret
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.0005)
print(service_secret(ServiceSettings(model_dir=Path("."))).decode())
"""


def test_processes_racing_to_create_it_share_one_secret(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    for round_ in range(3):
        home, go = tmp_path / f"home{round_}", tmp_path / f"go{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(go)],
                text=True,
                env={**env, "AVREC_HOME": str(home)},
                stdout=subprocess.PIPE,
            )
            for _ in range(8)
        ]
        time.sleep(1.0)  # let them all start and wait at the line
        go.touch()
        secrets = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert all(p.returncode == 0 for p in procs)
        assert len(secrets) == 1 and len(secrets.pop()) == 64, "racers disagree on the secret"
        assert mode(home / "secret") == 0o600
        assert [p.name for p in home.iterdir()] == ["secret"]
