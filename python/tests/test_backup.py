"""dspy-agent backup / restore against the real orchestrator: a backup taken while
tasks are being submitted holds every task accepted before it began; restored into
another (stopped) daemon's store, that daemon serves them all; a restore into the store
of a running orchestrator is refused; a file that is not a store is refused."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from test_orchestrator import Orchestrator, classes_yaml


def cli(*args):
    binary = str(Path(os.environ["DSPY_BUILD_DIR"]) / "cli/dspy-agent")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_backup_under_load_restored_into_another_daemon_loses_no_accepted_task(stubs, tmp_path):
    o = Orchestrator(stubs, classes_yaml(), commands="")
    other = Orchestrator(stubs, classes_yaml())
    try:
        accepted = []  # (task id, when its answer arrived)
        lock = threading.Lock()
        stop = threading.Event()

        def load(worker):
            i = 0
            while not stop.is_set():
                r = o.submit(f"bk-{worker}-{i}", command="echo", args='["x"]')
                if r.success:
                    with lock:
                        accepted.append((r.task_id, time.monotonic()))
                i += 1

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        began = time.monotonic()
        backup = tmp_path / "store.backup"
        r = cli("backup", str(backup), "--store", str(o.daemon.dir / "state"))
        time.sleep(0.5)  # the load goes on after the copy, as it would in production
        stop.set()
        for t in threads:
            t.join()
        assert r.returncode == 0, r.stderr
        assert "schema version" in r.stdout and "tasks" in r.stdout
        with lock:
            before = [tid for tid, at in accepted if at < began]
            after = [tid for tid, at in accepted if at >= began]
        assert len(before) > 100 and after, (len(before), len(after))

        # The running orchestrator's store cannot be restored over.
        live = cli("restore", str(backup), "--store", str(o.daemon.dir / "state"))
        assert live.returncode == 1 and "another orchestrator is using" in live.stderr, live.stderr
        # Not a store: refused, nothing moved.
        junk = tmp_path / "junk"
        junk.write_text("not a database")
        bad = cli("restore", str(junk), "--store", str(other.daemon.dir / "state"))
        assert bad.returncode == 1 and "restore failed" in bad.stderr

        # Into another daemon, stopped for it, then started on the restored store.
        other.daemon.proc.send_signal(signal.SIGTERM)
        other.daemon.proc.wait(timeout=10)
        done = cli("restore", str(backup), "--store", str(other.daemon.dir / "state"))
        assert done.returncode == 0, done.stderr
        assert "previous database is kept" in done.stdout
        other.daemon.restart()
        other.reconnect()
        missing = [tid for tid in before if other.status(tid).task_id != tid]
        assert not missing, f"{len(missing)} accepted task(s) missing from the restored store"
    finally:
        o.close()
        other.close()
