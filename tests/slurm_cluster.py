"""A real single-node Slurm cluster for the integration tests.

`running_cluster()` starts munged, slurmctld and slurmd from Debian's packages with every file
(configuration, state, spool, logs, munge key and socket) in one temporary directory, on free
ports, so it touches no system daemon. The node advertises a `gpu` gres of type `h100` backed by
character devices that are not GPUs: Slurm allocates them like GPUs (`--gres`, `--gpus`) and sets
`CUDA_VISIBLE_DEVICES` and `SLURM_GPUS_ON_NODE`, but nothing in a job can compute on them.
There is no accounting database, so `sacct` cannot answer: the cluster profile the tests install
(`avrt install-profile`, see `install_test_profile`) polls with `squeue`.

One path outside the temporary directory is used: `/run/slurm/conf`, a link to the cluster's
configuration. The Snakemake job step removes every `SLURM_*` variable (SLURM_CONF with them)
before calling `srun` inside a job, so `srun` finds the configuration where configless Slurm
nodes keep theirs. The link is taken exclusively, which also keeps two test clusters on one
machine from running at once; it is removed on teardown.
"""

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "ci" / "install_slurm.sh"
REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")

# Where Slurm clients look for the configuration when SLURM_CONF is unset and
# /etc/slurm/slurm.conf does not exist (configless mode).
CONFIGLESS_CONF_LINK = Path("/run/slurm/conf")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
# The id of the process that started a cluster, in its directory: a link to the directory of a
# process that is gone is stale.
OWNER_FILE = "owner.pid"

# Two partitions over the one node, as a cluster has for CPU and GPU work: the cluster profile's
# partition selection sends each job to the one its GPUs fit.
PARTITION = "cpu"
GPU_PARTITION = "gpu"
GPU_TYPE = "h100"
GPU_COUNT = 4
NODE_MEMORY_MB = 512_000
# Finished jobs stay visible to squeue this long; the executor plugin only trusts squeue
# for status when MinJobAge >= 3x its first status-check delay.
MIN_JOB_AGE_S = 300


class SlurmUnavailable(Exception):
    """This machine cannot run the test cluster (not root, no packages, a real Slurm present)."""


@dataclass
class SlurmCluster:
    """Handle on a running test cluster; client commands go through `run`."""

    root: Path
    conf_path: Path
    node_name: str
    cpus: int
    partition: str = PARTITION
    gpu_partition: str = GPU_PARTITION
    gpu_type: str = GPU_TYPE
    gpu_count: int = GPU_COUNT
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus SLURM_CONF, for sbatch/squeue/snakemake subprocesses."""
        return {**os.environ, "SLURM_CONF": str(self.conf_path)}

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Slurm client command (`sinfo`, `sbatch`, ...) against this cluster."""
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def sbatch(self, *args: str) -> str:
        """Submit a batch job and return its job id."""
        return self.run("sbatch", "--parsable", *args).stdout.strip().split(";")[0]

    def job_state(self, job_id: str) -> str:
        """The job's state as slurmctld reports it (PENDING, RUNNING, COMPLETED, FAILED, ...)."""
        fields = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout.split()
        return next(f.split("=", 1)[1] for f in fields if f.startswith("JobState="))

    def wait_for_job(self, job_id: str, timeout: float = 60) -> str:
        """Wait until the job has left PENDING/RUNNING/COMPLETING and return its final state."""
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job_id)) in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Slurm job {job_id} still {state} after {timeout:.0f} s")
            time.sleep(0.5)
        return state

    def node_state(self) -> str:
        """The node's state in lower case as sinfo prints it (idle, mixed, drained, ...); sinfo prints it
        once per partition."""
        out = self.run("sinfo", "--noheader", "--Node", "--format=%T", "--nodes", self.node_name).stdout
        return ",".join(sorted({line.strip() for line in out.splitlines() if line.strip()}))


def ensure_slurm_available() -> None:
    """Install Debian's Slurm and munge packages if missing, or say why the cluster cannot run."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("the test Slurm cluster needs root (slurmd runs jobs as their user)")
    if SYSTEM_CONF.exists():
        raise SlurmUnavailable(
            f"{SYSTEM_CONF} exists: job steps would use that cluster's configuration, not the test cluster's"
        )
    if CONFIGLESS_CONF_LINK.exists() and not CONFIGLESS_CONF_LINK.is_symlink():
        raise SlurmUnavailable(f"{CONFIGLESS_CONF_LINK} exists: this machine is a configless Slurm node")
    if any(shutil.which(binary) is None for binary in REQUIRED_BINARIES):
        result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SlurmUnavailable(f"installing slurm-wlm and munge failed: {result.stderr.strip()[-2000:]}")


@contextmanager
def running_cluster(start_timeout: float = 60, claim_timeout: float = 600) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd; yield once the node is idle; stop exactly those daemons.

    Call `ensure_slurm_available()` first. Waits up to `claim_timeout` seconds while another test
    cluster holds /run/slurm/conf.
    """
    root = Path(tempfile.mkdtemp(prefix="avrt-slurm-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        # munged requires every directory above its socket to be searchable by all users.
        root.chmod(0o755)
        node_line, cpus = _node_definition()
        node_name = node_line.split()[0].split("=", 1)[1]
        cluster = SlurmCluster(root=root, conf_path=root / "etc" / "slurm.conf", node_name=node_name, cpus=cpus)
        _write_files(cluster, node_line)
        (root / OWNER_FILE).write_text(str(os.getpid()))
        cleanup.callback(_release_conf_link, cluster.conf_path.parent)
        _claim_conf_link(cluster.conf_path.parent, claim_timeout)
        cleanup.callback(_stop_daemons, cluster)
        _start_daemons(cluster, start_timeout)
        yield cluster


def _node_definition() -> tuple[str, int]:
    """The NodeName line slurmd detects on this machine, and its CPU count."""
    detected = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    # The node declares the memory of a GPU node (slurm.conf: SlurmdParameters=config_overrides), so
    # the workflow profile's memory requests are scheduled as on a cluster; nothing enforces them
    # (no cgroups), and jobs share the machine's real memory.
    node_line = re.sub(r"RealMemory=\d+", f"RealMemory={NODE_MEMORY_MB}", detected.splitlines()[0].strip())
    cpus = next(int(f.split("=", 1)[1]) for f in node_line.split() if f.startswith("CPUs="))
    return node_line, cpus


def _free_ports(count: int) -> list[int]:
    """Ports no one listens on now; all held open together so that they differ."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _write_files(cluster: SlurmCluster, node_line: str) -> None:
    """slurm.conf, gres.conf, the fake GPU devices, the munge key and the daemons' directories."""
    root = cluster.root
    for name in ("etc", "state", "spool", "log", "run", "dev"):
        (root / name).mkdir()
    (root / "munge").mkdir(mode=0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)

    # Character devices (same numbers as /dev/null), not plain files: Slurm exports
    # CUDA_VISIBLE_DEVICES only for gres backed by device files.
    for index in range(cluster.gpu_count):
        try:
            os.mknod(root / "dev" / f"gpu{index}", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError as exc:
            raise RuntimeError(f"cannot create the fake GPU device {root}/dev/gpu{index}: {exc}") from exc

    host = socket.gethostname()
    slurmctld_port, slurmd_port = _free_ports(2)
    cluster.conf_path.write_text(
        f"""\
ClusterName=avrt-test
SlurmctldHost={host}
SlurmctldPort={slurmctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/run/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# No cgroups and no accounting: the smallest set of plugins that runs real jobs.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
# A node that was down comes back by itself once slurmd registers.
ReturnToService=2
MinJobAge={MIN_JOB_AGE_S}
SlurmdParameters=config_overrides
KillWait=5
# Jobs without --mem must not take the whole node's memory.
DefMemPerCPU=512
GresTypes=gpu
{node_line} Gres=gpu:{cluster.gpu_type}:{cluster.gpu_count} State=UNKNOWN
PartitionName={cluster.partition} Nodes={cluster.node_name} Default=YES MaxTime=INFINITE State=UP
PartitionName={cluster.gpu_partition} Nodes={cluster.node_name} MaxTime=INFINITE State=UP
"""
    )
    last_gpu = cluster.gpu_count - 1
    (cluster.conf_path.parent / "gres.conf").write_text(
        f"NodeName={cluster.node_name} Name=gpu Type={cluster.gpu_type} File={root}/dev/gpu[0-{last_gpu}]\n"
    )


def _claim_conf_link(conf_dir: Path, timeout: float) -> None:
    """Point /run/slurm/conf at `conf_dir`, waiting while another live test cluster holds it."""
    CONFIGLESS_CONF_LINK.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            CONFIGLESS_CONF_LINK.symlink_to(conf_dir)
            return
        except FileExistsError:
            if not _held_by_running_cluster(CONFIGLESS_CONF_LINK):
                CONFIGLESS_CONF_LINK.unlink(missing_ok=True)  # left by a test run that was killed
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{CONFIGLESS_CONF_LINK} -> {os.readlink(CONFIGLESS_CONF_LINK)}: "
                    f"another test cluster has been running for over {timeout:.0f} s"
                )
            time.sleep(2)


def _held_by_running_cluster(link: Path) -> bool:
    """Whether the process that started the cluster the link points to is still running."""
    try:
        pid = int((link.resolve().parent / OWNER_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def _release_conf_link(conf_dir: Path) -> None:
    if CONFIGLESS_CONF_LINK.is_symlink() and Path(os.readlink(CONFIGLESS_CONF_LINK)) == conf_dir:
        CONFIGLESS_CONF_LINK.unlink()
        try:
            CONFIGLESS_CONF_LINK.parent.rmdir()
        except OSError:
            pass  # not empty: something else keeps files in /run/slurm


def _start_daemons(cluster: SlurmCluster, timeout: float) -> None:
    """Start each daemon in the foreground (so its process id is the daemon's) and wait for it."""
    root, conf = cluster.root, str(cluster.conf_path)
    munged = [
        "munged",
        "--foreground",
        f"--socket={root}/run/munge.socket",
        f"--key-file={root}/munge/munge.key",
        f"--pid-file={root}/munge/munged.pid",
        f"--log-file={root}/log/munged.log",
        f"--seed-file={root}/munge/munged.seed",
    ]
    _start(cluster, "munged", munged)
    _wait_until(cluster, lambda: (root / "run" / "munge.socket").exists(), "munged to open its socket", timeout)

    _start(cluster, "slurmctld", ["slurmctld", "-D", "-f", conf])
    _wait_until(
        cluster,
        lambda: " is UP" in cluster.run("scontrol", "ping", check=False, timeout=10).stdout,
        "slurmctld to answer",
        timeout,
    )

    _start(cluster, "slurmd", ["slurmd", "-D", "-f", conf])

    def node_idle() -> bool:
        state = cluster.node_state()
        if state.startswith(("drain", "down")):
            cluster.run("scontrol", "update", f"nodename={cluster.node_name}", "state=resume", check=False)
        return state == "idle"

    _wait_until(cluster, node_idle, f"node {cluster.node_name} to become idle", timeout)


def _start(cluster: SlurmCluster, name: str, command: list[str]) -> None:
    output = open(cluster.root / "log" / f"{name}.out", "wb")
    # A session of their own: a Ctrl-C in the test run reaches the tests, not the daemons,
    # which teardown then stops in order.
    cluster.daemons[name] = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, cwd=cluster.root, start_new_session=True
    )
    output.close()


def _wait_until(cluster: SlurmCluster, condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for name, process in cluster.daemons.items():
            if process.poll() is not None:
                log = _log_tail(cluster, name)
                raise RuntimeError(f"{name} exited ({process.returncode}) while waiting for {what}:\n{log}")
        if time.monotonic() > deadline:
            logs = "\n".join(_log_tail(cluster, name) for name in cluster.daemons)
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}:\n{logs}")
        time.sleep(0.5)


def _log_tail(cluster: SlurmCluster, name: str, lines: int = 15) -> str:
    logs = [cluster.root / "log" / f"{name}.out", cluster.root / "log" / f"{name}.log"]
    text = "".join(path.read_text(errors="replace") for path in logs if path.exists())
    return f"--- {name}\n" + "\n".join(text.splitlines()[-lines:])


def _stop_daemons(cluster: SlurmCluster) -> None:
    """Cancel the cluster's jobs, then stop slurmd, slurmctld and munged by their process ids."""
    if "slurmctld" in cluster.daemons and cluster.daemons["slurmctld"].poll() is None:
        # Job steps outlive slurmd, so no job may still run when it stops.
        for partition in (cluster.partition, cluster.gpu_partition):
            cluster.run("scancel", f"--partition={partition}", check=False)
        deadline = time.monotonic() + 30
        while cluster.run("squeue", "--noheader", check=False).stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.5)
    for name in ("slurmd", "slurmctld", "munged"):
        process = cluster.daemons.get(name)
        if process is None or process.poll() is not None:
            continue
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def install_test_profile(cluster: SlurmCluster, home: Path) -> dict[str, str]:
    """Install the `slurm` cluster profile for this cluster as a user would, with `home` as HOME, and
    return the environment that makes `snakemake --profile slurm` find it and the cluster.

    The cluster has no accounting (no account, status from squeue) and few CPUs (one per job); its
    jobs take seconds, so status is polled early and outputs appear at once on its one file system.
    """
    env = {**cluster.env, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)  # Snakemake's user config folder is then $HOME/.config/snakemake
    avrt = Path(sys.executable).parent / "avrt"
    subprocess.run([str(avrt), "install-profile", "slurm", "--account", "", "--cpu-partition", cluster.partition,
                    "--gpu-partition", cluster.gpu_partition, "--gpus-per-node", str(cluster.gpu_count),
                    "--gpu-model", cluster.gpu_type, "--max-threads", "1", "--status-command", "squeue",
                    "--jobs", "4"], env=env, check=True, capture_output=True, text=True)
    config_path = home / ".config" / "snakemake" / "slurm" / "config.yaml"
    settings = yaml.safe_load(config_path.read_text())
    settings.update({"latency-wait": 5, "slurm-init-seconds-before-status-checks": 8,
                     "seconds-between-status-checks": 8})
    config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return env

