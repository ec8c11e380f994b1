"""A private single-node SLURM cluster for the tests: munged, slurmctld and slurmd from Debian's
packages (``apt-get install slurmctld slurmd slurm-client munge``), run as root with every file in
one temporary directory, on free loopback ports. Clients find it through ``SLURM_CONF``.

``start(root)`` returns a ``Cluster`` (``stop()`` ends the three daemons by their pids), or raises
``Unavailable`` with the reason when the binaries are missing, we are not root or the node does not
come up in time.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "mungekey")
PARTITION = "debug"


class Unavailable(RuntimeError):
  """SLURM cannot run here (the reason says why)."""


@dataclasses.dataclass
class Cluster:
  root: str
  env: dict  # SLURM_CONF for the clients
  pid_files: list

  def stop(self) -> None:
    for path in reversed(self.pid_files):
      try:
        with open(path) as f:
          pid = int(f.read().split()[0])
      except (OSError, ValueError, IndexError):
        continue
      try:
        os.kill(pid, signal.SIGTERM)
      except ProcessLookupError:
        continue
      for _ in range(100):  # up to 10 s
        try:
          os.kill(pid, 0)
        except ProcessLookupError:
          break
        time.sleep(0.1)
      else:
        os.kill(pid, signal.SIGKILL)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _which(name: str) -> str | None:
  return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                     if os.path.exists(p)), None)


def _config(root: str, host: str, cpus: int, munge_socket: str) -> str:
  return "\n".join([
      "ClusterName=attnlabtest",
      f"SlurmctldHost={host}(127.0.0.1)",
      f"SlurmctldPort={_free_port()}",
      f"SlurmdPort={_free_port()}",
      "AuthType=auth/munge",
      "CredType=cred/munge",
      # cred_expire also bounds how long a requeued job waits before it may start again.
      f"AuthInfo=socket={munge_socket},cred_expire=5",
      "SlurmUser=root", "SlurmdUser=root",
      f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
      f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
      f"SlurmctldLogFile={root}/slurmctld.log", f"SlurmdLogFile={root}/slurmd.log",
      "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SwitchType=switch/none",
      "MpiDefault=none", "ReturnToService=2",
      "SchedulerType=sched/builtin", "SchedulerParameters=sched_interval=2",
      "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
      "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/none", "MailProg=/bin/true",
      f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN",
      f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


def start(root: str, timeout_s: float = 60.0) -> Cluster:
  missing = [n for n in DAEMONS + CLIENTS if _which(n) is None]
  if missing:
    raise Unavailable(f"SLURM is not installed ({', '.join(missing)} missing; Debian: apt-get "
                      "install slurmctld slurmd slurm-client munge)")
  if os.geteuid() != 0:
    raise Unavailable("the private SLURM cluster runs its daemons as root")
  for sub in ("state", "spool", "munge"):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
  munge_dir = os.path.join(root, "munge")
  os.chmod(munge_dir, 0o700)
  munge_socket = os.path.join(munge_dir, "socket")
  key = os.path.join(munge_dir, "munge.key")
  subprocess.run([_which("mungekey"), "-c", "-k", key], check=True, capture_output=True)
  conf = os.path.join(root, "slurm.conf")
  with open(conf, "w") as f:
    f.write(_config(root, socket.gethostname().split(".")[0], os.cpu_count() or 1, munge_socket))
  env = {"SLURM_CONF": conf}
  full_env = {**os.environ, **env}
  cluster = Cluster(root, env, [os.path.join(munge_dir, "munged.pid"),
                                os.path.join(root, "slurmctld.pid"),
                                os.path.join(root, "slurmd.pid")])
  commands = [
      [_which("munged"), "--force", f"--socket={munge_socket}", f"--key-file={key}",
       f"--pid-file={cluster.pid_files[0]}", f"--log-file={munge_dir}/munged.log",
       f"--seed-file={munge_dir}/munged.seed"],
      [_which("slurmctld"), "-i"],  # -i: ignore state left by an earlier run
      [_which("slurmd")]]
  try:
    for command in commands:  # each daemonizes and writes its pid file
      done = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=30)
      if done.returncode != 0:
        raise Unavailable(f"{os.path.basename(command[0])} did not start: "
                          f"{(done.stderr or done.stdout).strip()[-300:]}")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
      out = subprocess.run([_which("sinfo"), "-h", "-o", "%T"], env=full_env,
                           capture_output=True, text=True, timeout=30).stdout.split()
      if out and out[0] in ("idle", "mixed", "allocated"):
        return cluster
      time.sleep(0.5)
    raise Unavailable(f"the SLURM node did not come up within {timeout_s:g}s (sinfo: {out})")
  except BaseException:
    cluster.stop()
    raise
