"""A real one-node Slurm cluster on loopback, private to one directory, for the cluster tests.

It runs the Debian packages' daemons (``slurm-wlm``, ``slurmdbd``, ``munge``, ``mariadb-server``):
a private munged (own key and socket), a private MariaDB (own datadir, TCP port on 127.0.0.1),
slurmdbd, slurmctld and slurmd. The node has the machine's CPUs and most of its memory, one fake
GPU (GRES ``gpu:<type>:1`` backed by a character device that is a copy of /dev/null), and two
partitions on that node: ``cpu`` (default) and ``gpu``. Accounting goes through slurmdbd, so
``sacct`` works (the slurm executor plugin polls it) and records each job's partition and TRES.

Outside the state directory only one thing is touched: ``/etc/slurm/slurm.conf`` becomes a symlink
to this cluster's config while it runs, if no such file exists (a real node has it; the job-step
plugin strips ``SLURM_CONF`` from the environment of the ``srun`` it runs inside each job, so clients
there find the cluster only at the default path). ``down()`` removes that link again. Clients
outside jobs also get ``SLURM_CONF`` (``LocalSlurm.env()``), ports are picked free at start-up, and
``down()`` stops exactly the daemons whose pid files are in the state directory.

    python tests/localslurm.py up /tmp/myslurm     # prints the SLURM_CONF to export
    python tests/localslurm.py down /tmp/myslurm

What does not work here: there is no GPU behind the GRES and no cgroup enforcement (task/none,
proctrack/linuxproc), so memory and CPU requests are bookkeeping only. Jobs run as the submitting
user (root in CI).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "mariadb-install-db", "sinfo", "sacctmgr", "sbatch", "sacct")
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
DB_PASSWORD = "pidistill-local-slurm"  # loopback only, a throwaway database


def missing_binaries() -> list[str]:
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def unavailable_reason() -> str | None:
    """Why a local Slurm cannot run here, or None if it can."""
    missing = missing_binaries()
    if missing:
        return f"Slurm packages not installed (missing {', '.join(missing)}; `make slurm` installs {' '.join(PACKAGES)})"
    if DEFAULT_CONF.exists() and not DEFAULT_CONF.is_symlink():
        return f"{DEFAULT_CONF} exists: this machine has a Slurm of its own, which the test must not disturb"
    if os.geteuid() != 0:
        return "the local Slurm cluster needs root (daemons run as root and as the munge/mysql users)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sbin(name: str) -> str:
    found = shutil.which(name)
    return found or str(Path("/usr/sbin", name))


def _alive(pid_file: Path) -> int | None:
    """The pid in pid_file if that process runs (a zombie counts as gone)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state == "Z" else pid


@dataclass
class LocalSlurm:
    state: Path
    gpu_type: str = "h200"
    cluster: str = "pidistill"
    account: str = "pidistill-ci"
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = Path(self.state).resolve()
        self.etc = self.state / "etc"
        self.run_dir = self.state / "run"
        self.log_dir = self.state / "log"
        self.munge_socket = self.state / "munge" / "munge.socket"
        self.db_socket = self.state / "mysql-run" / "mysqld.sock"
        self.node = socket.gethostname().split(".")[0]

    # ------------------------------------------------------------------ interface
    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    def env(self) -> dict[str, str]:
        """Environment for clients (sbatch, sacct, snakemake): the cluster's SLURM_CONF."""
        return {**os.environ, "SLURM_CONF": str(self.slurm_conf)}

    def run(self, *cmd: str, check: bool = True) -> str:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env(), timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def up(self, timeout: float = 120.0) -> "LocalSlurm":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        if _alive(self.run_dir / "slurmctld.pid"):
            raise RuntimeError(f"a local Slurm already runs from {self.state}")
        t0 = time.monotonic()
        for d in ("etc", "run", "log", "munge", "mysql", "mysql-run", "spool/ctld", "spool/d", "dev"):
            (self.state / d).mkdir(parents=True, exist_ok=True)
        # the munge and mysql users must reach their directories
        for p in [self.state, *self.state.parents]:
            if p == Path("/"):
                break
            if os.stat(p).st_mode & 0o011 != 0o011:
                os.chmod(p, os.stat(p).st_mode | 0o055)
        self.ports = {k: _free_port() for k in ("ctld", "slurmd", "dbd", "db")}
        self._write_configs()
        self._start_munge()
        self._start_mariadb()
        self._start_slurmdbd()
        self._start("slurmctld", [_sbin("slurmctld")], self.run_dir / "slurmctld.pid")
        self._wait(lambda: self._port_open(self.ports["ctld"]), 30, "slurmctld to listen")
        self._start("slurmd", [_sbin("slurmd")], self.run_dir / "slurmd.pid")
        self._wait(self._node_idle, 60, f"node {self.node} to be idle")
        self._wait(self._cluster_registered, 60, "the cluster to register in slurmdbd")
        self._add_account()
        self._link_default_conf()
        print(f"local slurm up in {time.monotonic() - t0:.1f} s: SLURM_CONF={self.slurm_conf}", file=sys.stderr)
        return self

    def down(self, purge: bool = False) -> None:
        order = [("slurmd", self.run_dir / "slurmd.pid"), ("slurmctld", self.run_dir / "slurmctld.pid"),
                 ("slurmdbd", self.run_dir / "slurmdbd.pid"), ("mariadbd", self.state / "mysql-run" / "mariadbd.pid"),
                 ("munged", self.state / "munge" / "munged.pid")]
        for _name, pid_file in order:
            pid = _alive(pid_file)
            if pid:
                os.kill(pid, signal.SIGTERM)
                end = time.monotonic() + 20
                while _alive(pid_file) and time.monotonic() < end:
                    time.sleep(0.2)
                if _alive(pid_file):
                    os.kill(pid, signal.SIGKILL)
        if DEFAULT_CONF.is_symlink() and Path(os.readlink(DEFAULT_CONF)) == self.slurm_conf:
            DEFAULT_CONF.unlink()
        if purge:
            shutil.rmtree(self.state, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for f in sorted(self.log_dir.glob("*.log")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    # ------------------------------------------------------------------ configuration
    def _write_configs(self) -> None:
        dev = self.state / "dev" / "nvidia0"
        if not dev.exists():  # slurmd drops a GPU GRES without File=; a /dev/null clone stands in
            os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
        cpus = os.cpu_count() or 1
        s, p = self.state, self.ports
        slurm_conf = f"""\
# written by tests/localslurm.py: a private one-node cluster
ClusterName={self.cluster}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={p['ctld']}
SlurmdPort={p['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={s}/spool/ctld
SlurmdSpoolDir={s}/spool/d
SlurmctldPidFile={self.run_dir}/slurmctld.pid
SlurmdPidFile={self.run_dir}/slurmd.pid
SlurmctldLogFile={self.log_dir}/slurmctld.log
SlurmdLogFile={self.log_dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
KillWait=5
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={p['dbd']}
AccountingStoragePass={self.munge_socket}
AccountingStorageTRES=gres/gpu,gres/gpu:{self.gpu_type}
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{self.gpu_type}:1 State=UNKNOWN
PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP
"""
        (self.etc / "slurm.conf").write_text(slurm_conf)
        (self.etc / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.node} Name=gpu Type={self.gpu_type} File={dev}\n")
        dbd = self.etc / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost={self.node}
DbdAddr=127.0.0.1
DbdPort={p['dbd']}
SlurmUser=root
PidFile={self.run_dir}/slurmdbd.pid
LogFile={self.log_dir}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={p['db']}
StorageUser=slurm
StoragePass={DB_PASSWORD}
StorageLoc=slurm_acct_db
""")
        os.chmod(dbd, 0o600)  # slurmdbd refuses a config others can read

    # ------------------------------------------------------------------ daemons
    def _start(self, name: str, cmd: list[str], pid_file: Path) -> None:
        if _alive(pid_file):
            return
        with open(self.log_dir / f"{name}.out", "ab") as out:
            proc = subprocess.run(cmd, env=self.env(), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} did not start (exit {proc.returncode}):\n{self.log_tail()}")
        self._wait(lambda: _alive(pid_file), 30, f"{name}'s pid file")

    def _start_munge(self) -> None:
        key = self.state / "munge" / "munge.key"
        munge = pwd.getpwnam("munge")
        if not key.exists():
            subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        for p in (key, key.parent):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        os.chmod(key, 0o400)
        os.chmod(key.parent, 0o711)  # munged wants its socket's directory traversable by all
        pid_file = key.parent / "munged.pid"
        self._start("munged", ["runuser", "-u", "munge", "--", _sbin("munged"), f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--pid-file={pid_file}", f"--log-file={key.parent}/munged.log",
                               f"--seed-file={key.parent}/munged.seed"], pid_file)

    def _start_mariadb(self) -> None:
        datadir, rundir = self.state / "mysql", self.state / "mysql-run"
        mysql = pwd.getpwnam("mysql")
        for p in (datadir, rundir):
            os.chown(p, mysql.pw_uid, mysql.pw_gid)
        if not (datadir / "mysql").exists():
            with open(self.log_dir / "mariadb-install.log", "wb") as out:
                subprocess.run([shutil.which("mariadb-install-db") or "mariadb-install-db", "--no-defaults",
                                "--user=mysql", f"--datadir={datadir}", "--skip-test-db",
                                "--auth-root-authentication-method=socket"], check=True, stdout=out, stderr=out)
        pid_file = rundir / "mariadbd.pid"
        if not _alive(pid_file):
            subprocess.Popen([_sbin("mariadbd"), "--no-defaults", "--user=mysql", f"--datadir={datadir}",
                              f"--socket={self.db_socket}", f"--pid-file={pid_file}", f"--port={self.ports['db']}",
                              "--bind-address=127.0.0.1", f"--log-error={self.log_dir}/mariadb.log",
                              "--innodb-buffer-pool-size=128M", "--skip-name-resolve"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            self._wait(lambda: self._sql("SELECT 1", check=False), 60, "mariadbd to accept connections")
        self._sql(f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'; "
                  "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;")

    def _sql(self, statement: str, check: bool = True) -> bool:
        proc = subprocess.run(["mariadb", "--no-defaults", "-S", str(self.db_socket), "-u", "root", "-e", statement],
                              capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"mariadb: {proc.stderr.strip()}")
        return proc.returncode == 0

    def _start_slurmdbd(self) -> None:
        self._start("slurmdbd", [_sbin("slurmdbd")], self.run_dir / "slurmdbd.pid")
        self._wait(lambda: self._port_open(self.ports["dbd"]), 60, "slurmdbd to listen")

    # ------------------------------------------------------------------ readiness
    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-n", self.node, "-o", "%t", check=False).split()
        return bool(out) and all(state == "idle" for state in out)

    def _cluster_registered(self) -> bool:
        out = self.run("sacctmgr", "-n", "-P", "list", "cluster", "format=cluster", check=False)
        return self.cluster in out.split()

    def _link_default_conf(self) -> None:
        if DEFAULT_CONF.is_symlink() and not DEFAULT_CONF.exists():
            DEFAULT_CONF.unlink()  # left by a cluster that is gone
        if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
            if DEFAULT_CONF.resolve() != self.slurm_conf:
                raise RuntimeError(f"{DEFAULT_CONF} exists and is not this cluster's: jobs would not find it")
            return
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.symlink_to(self.slurm_conf)

    def _add_account(self) -> None:
        """An account with the current user in it: the slurm plugin validates slurm_account against it."""
        user = pwd.getpwuid(os.geteuid()).pw_name
        if self.account not in self.run("sacctmgr", "-n", "-P", "list", "account", "format=account").split():
            self.run("sacctmgr", "-i", "add", "account", self.account, f"cluster={self.cluster}")
        self.run("sacctmgr", "-i", "add", "user", user, f"account={self.account}", f"cluster={self.cluster}",
                 check=False)  # exits non-zero when the association exists

    def _wait(self, ready, seconds: float, what: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}:\n{self.log_tail()}")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down"):
        print("usage: localslurm.py up|down STATE_DIR [--purge]", file=sys.stderr)
        return 2
    cluster = LocalSlurm(Path(argv[1]))
    if argv[0] == "up":
        cluster.up()
        print(f"export SLURM_CONF={cluster.slurm_conf}")
    else:
        cluster.down(purge="--purge" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
