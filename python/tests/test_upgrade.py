"""scripts/upgrade.sh on an installation in a staging root whose daemons were started by
`dspy-agent start` (no systemd here): a good release is switched to and its daemons run;
a release whose orchestrator cannot start is rolled back by itself, and the previous
release runs again; so is one that migrated the store first, and the rollback puts the
store's pre-migration copy back."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from test_cli_lifecycle import daemon_env


def exe_of(pid_file):
    return os.readlink(f"/proc/{int(Path(pid_file).read_text())}/exe")


class Installation:
    """A staging root with its own daemon configs; `script` runs one of scripts/ on it."""

    def __init__(self, tmp_path):
        self.build = Path(os.environ["DSPY_BUILD_DIR"])
        self.root = tmp_path / "root"
        self.env, self.ports = daemon_env(tmp_path)
        self.cli = self.root / "opt/dspy/bin/dspy-agent"
        self.pid_file = tmp_path / "run/orchestrator.pid"

    def script(self, name, *args):
        return subprocess.run(["bash", str(ROOT / "scripts" / name), "--root", str(self.root), "--prefix", "/opt/dspy",
                               *args], capture_output=True, text=True, timeout=300, env=self.env)

    def start(self):
        r = self.script("install.sh", "--build", str(self.build), "--release", "rel-a")
        assert r.returncode == 0, r.stderr
        r = subprocess.run([str(self.cli), "start", "--no-services"], capture_output=True, text=True, timeout=120,
                           env=self.env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "/releases/rel-a/" in exe_of(self.pid_file)

    def release_with_orchestrator(self, where, text):
        """A build tree of this build's env-manager and CLI and `text` as the orchestrator."""
        for sub, binary in (("env_manager", "env-manager"), ("cli", "dspy-agent")):
            (where / sub).mkdir(parents=True)
            shutil.copy(self.build / sub / binary, where / sub / binary)
        (where / "orchestrator").mkdir()
        (where / "orchestrator/orchestrator").write_text(text)
        (where / "orchestrator/orchestrator").chmod(0o755)
        return where

    def orchestrator_status(self):
        r = subprocess.run([str(self.cli), "status", "--orchestrator-http", f"127.0.0.1:{self.ports[3]}",
                            "--env-manager-http", f"127.0.0.1:{self.ports[1]}", "--json"],
                           capture_output=True, text=True, timeout=60, env=self.env)
        return json.loads(r.stdout)["orchestrator"]["status"]

    def stop(self):
        subprocess.run([str(self.cli), "stop", "--keep-services", "--force"], capture_output=True, timeout=120,
                       env=self.env)


def test_upgrade_switches_and_rolls_back_a_release_that_does_not_become_healthy(tmp_path):
    inst = Installation(tmp_path)
    current = inst.root / "opt/dspy/lib/dspy-agent/current"
    # A release whose orchestrator reports a version and then cannot start.
    bad = inst.release_with_orchestrator(tmp_path / "bad", '#!/bin/sh\n[ "$1" = --version ] && '
                                         '{ echo "orchestrator 9.9.9"; exit 0; }\necho "broken release" >&2\nexit 1\n')
    try:
        inst.start()
        good = inst.script("upgrade.sh", "--build", str(inst.build), "--release", "rel-b")
        assert good.returncode == 0, good.stderr
        assert os.readlink(current) == "releases/rel-b"
        assert "/releases/rel-b/" in exe_of(inst.pid_file)
        assert (inst.root / "opt/dspy/lib/dspy-agent/releases/rel-a").is_dir()  # kept beside the new one

        failed = inst.script("upgrade.sh", "--build", str(bad), "--release", "rel-c", "--timeout", "15")
        assert failed.returncode == 1, failed.stderr
        assert "rolling back to rel-b" in failed.stderr and "rolled back: rel-b runs again" in failed.stderr
        assert os.readlink(current) == "releases/rel-b"
        assert "/releases/rel-b/" in exe_of(inst.pid_file)
        assert inst.orchestrator_status() == "ok"
    finally:
        inst.stop()


def test_a_rollback_after_a_store_migration_puts_the_store_back_for_the_older_release(tmp_path):
    """The new release migrates the store to a newer schema (keeping the copy it must
    keep) and then fails: the previous release refuses a newer store, so the rollback
    must restore that copy before it starts it again."""
    inst = Installation(tmp_path)
    store = tmp_path / "store"

    def version(db):
        with sqlite3.connect(db) as c:
            return c.execute("PRAGMA user_version").fetchone()[0]

    # What a newer orchestrator does when it opens an older store (a copy first, then the
    # migration), followed by a failure of something else.
    migrating = inst.release_with_orchestrator(tmp_path / "migrating", f"""#!{sys.executable}
import sqlite3, sys
if sys.argv[1:2] == ["--version"]:
    print("orchestrator 9.9.9")
    sys.exit(0)
db = sqlite3.connect({str(store / "orchestrator.db")!r})
v = db.execute("PRAGMA user_version").fetchone()[0]
copy = sqlite3.connect({str(store)!r} + f"/orchestrator.db.before-schema-{{v}}")
db.backup(copy)
copy.close()
db.execute(f"PRAGMA user_version = {{v + 1}}")
db.commit()
print("migrated the store, then failed", file=sys.stderr)
sys.exit(1)
""")
    try:
        inst.start()
        ours = version(store / "orchestrator.db")
        failed = inst.script("upgrade.sh", "--build", str(migrating), "--release", "rel-m", "--timeout", "15")
        assert failed.returncode == 1, failed.stderr
        assert f"migrated the store in {store} from schema {ours}" in failed.stderr, failed.stderr
        assert "rolled back: rel-a runs again" in failed.stderr, failed.stderr
        assert "/releases/rel-a/" in exe_of(inst.pid_file)
        assert version(store / "orchestrator.db") == ours
        kept = list(store.glob("orchestrator.db.before-restore-*[0-9]"))
        assert len(kept) == 1 and version(kept[0]) == ours + 1, kept  # what the new release wrote is kept
        assert inst.orchestrator_status() == "ok"
    finally:
        inst.stop()
