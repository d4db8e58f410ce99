"""Run a built syncd image without a container runtime, and check what a user relies on.

    python3 deploy/container/standin.py IMAGE        (as root; scripts/container-check calls it)

Where a runtime cannot start containers (here `podman run` fails on setrlimit), the image's root
filesystem stands in: `podman create` + `podman mount` give a writable copy of it, /proc, /dev,
/tmp, the config, the file export and the secrets are mounted into it the way `docker run -v`
would, and every process runs there with `chroot --userspec` under the image's own config (its
User, Env, WorkingDir, Entrypoint, Cmd and Healthcheck, read from `podman image inspect`). What
this does not reproduce is a runtime's isolation (namespaces, cgroups, capabilities): the
network is the host's, so ports are picked free on 127.0.0.1.

Checked, in order, each printed as it passes:
  1. the image config has a HEALTHCHECK (so it was built with `--format docker`), runs as
     10001:10001 in /var/lib/syncd, which is a VOLUME;
  2. /var/lib/syncd in the image is owned by 10001:10001, mode 0700; Python is the base's;
  3. `syncd run` (the image's ENTRYPOINT and CMD) syncs a mounted file export into the image's
     own `syncd emulator`, with deploy/examples/file.toml mounted at /etc/syncd/syncd.toml, the
     export beside it, the target from SYNCD_* variables and the token a file:/run/secrets/
     secret; the users and group arrive; the default SQLite cache is created on the volume as
     10001;
  4. the image's HEALTHCHECK command exits 0 against it; `syncd status` reads the cache;
  5. SIGTERM stops it: exit code 0, `daemon.stopped` logged; the HEALTHCHECK then fails;
  6. as compose.yaml sets it up, syncd reaches a PostgreSQL (a throwaway server, when this machine
     has PostgreSQL's binaries) with the password only in a PGPASSFILE of mode 0600 owned by 10001,
     and libpq ignores one that others can read.

Only the standard library: it runs with the host's python3 before any virtualenv exists.
"""

# It runs fixed commands (podman, mount, chroot) on a path it made, and reads local http URLs.
# ruff: noqa: S603, S607, S108, S310

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


UID = 10001
VOLUME = "/var/lib/syncd"
# Generous bounds for a busy 2-core machine; each wait ends as soon as its event is seen.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
TOKEN = "standin-" + uuid.uuid4().hex

EXPORT: dict[str, list[dict[str, Any]]] = {
    "users": [
        {
            "id": f"u{n}",
            "user_name": f"{name}@example.com",
            "email": f"{name}@example.com",
            "given_name": name.capitalize(),
            "family_name": "Standin",
            "active": True,
        }
        for n, name in enumerate(["ada", "grace", "linus"], start=1)
    ],
    "groups": [{"id": "g1", "name": "aws-admins", "members": ["u1", "u2", "u3"]}],
}
# The config users start from, mounted at /etc/syncd/syncd.toml with the export beside it (its
# relative path = "directory.json"); the target comes from SYNCD_* variables, as compose.yaml sets it.
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "file.toml"


class CheckFailed(Exception):
    """One of the checks did not hold; the message says which and what was seen."""


def ok(message: str) -> None:
    print(f"ok: {message}", flush=True)


def run(*args: str, **kwargs: Any) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return str(done.stdout).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rootfs:
    """A writable copy of the image's root filesystem with a container's mounts, as `chroot` targets."""

    def __init__(self, image: str, config: dict[str, Any]) -> None:
        self.image = image
        self.config = config
        self.name = f"syncd-standin-{uuid.uuid4().hex[:8]}"
        self.mounts: list[Path] = []
        self.path = Path()

    def __enter__(self) -> Rootfs:
        run("podman", "create", "--name", self.name, self.image)
        self.path = Path(run("podman", "mount", self.name))
        return self

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "--lazy", str(target)], check=False)
        subprocess.run(["podman", "umount", self.name], capture_output=True, check=False)
        subprocess.run(["podman", "rm", "--force", self.name], capture_output=True, check=False)

    def mount(self, source: str | Path, target: str, *options: str, fstype: str | None = None) -> None:
        """Mount ``source`` at ``target`` inside the root (created as a file or a directory as needed)."""
        where = self.path / target.lstrip("/")
        if Path(source).is_file():
            where.parent.mkdir(parents=True, exist_ok=True)
            where.touch(exist_ok=True)
        else:
            where.mkdir(parents=True, exist_ok=True)
        command = ["mount"]
        if fstype:
            command += ["-t", fstype]
        if options:
            command += ["-o", ",".join(options)]
        run(*command, str(source), str(where))
        self.mounts.append(where)
        if "bind" in options and "ro" in options:
            # A read-only bind needs a remount to take effect on older kernels and util-linux.
            run("mount", "-o", "remount,bind,ro", str(where))

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """``argv`` as the image's User in its WorkingDir with exactly ``env``, inside the root."""
        user = self.config.get("User") or "0:0"
        workdir = self.config.get("WorkingDir") or "/"
        return [
            "chroot",
            f"--userspec={user}",
            str(self.path),
            "/usr/bin/env",
            "-i",
            f"--chdir={workdir}",
            *(f"{k}={v}" for k, v in env.items()),
            *argv,
        ]


def image_env(config: dict[str, Any], **overrides: str) -> dict[str, str]:
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    env.update(overrides)
    return env


class Process:
    """A process in the root whose output lines are read as they come, to wait on what it reports."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Any, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.0)) if left > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                state = "exited" if self.proc.poll() is not None else f"gave no sign within {timeout:g}s"
                raise CheckFailed(f"{self.name} {state} before {what}:\n" + "\n".join(self.seen[-30:]))
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise CheckFailed(f"{self.name} did not stop within {timeout:g}s of {sig.name}") from None

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while (line := self.lines.get(timeout=5)) is not None:
                self.seen.append(line)


def event(name: str, **fields: Any) -> Any:
    def matches(line: str) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False
        return isinstance(record, dict) and record.get("event") == name and fields.items() <= record.items()

    return matches


def healthcheck(root: Rootfs, env: dict[str, str]) -> int:
    """Run the image's HEALTHCHECK command the way a runtime does (exec in the container, its timeout)."""
    check = root.config["Healthcheck"]
    test = list(check["Test"])
    kind, argv = test[0], test[1:]
    if kind == "CMD-SHELL":
        argv = ["/bin/sh", "-c", argv[0]]
    elif kind != "CMD":
        raise CheckFailed(f"HEALTHCHECK has an unexpected form: {test}")
    timeout = (check.get("Timeout") or 30_000_000_000) / 1e9
    try:
        return subprocess.run(root.command(argv, env), capture_output=True, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        return -1


def scim_get(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def check_config(image: str) -> dict[str, Any]:
    (inspected,) = json.loads(run("podman", "image", "inspect", image))
    config = dict(inspected.get("Config") or {})
    health = inspected.get("Healthcheck") or config.get("Healthcheck")
    if not health:
        raise CheckFailed("the image has no HEALTHCHECK: build it with `podman build --format docker` (OCI drops it)")
    config["Healthcheck"] = health
    if config.get("User") != f"{UID}:{UID}":
        raise CheckFailed(f"the image runs as {config.get('User')!r}, not {UID}:{UID}")
    if config.get("WorkingDir") != VOLUME or VOLUME not in (config.get("Volumes") or {}):
        seen = f"{config.get('WorkingDir')}, {config.get('Volumes')}"
        raise CheckFailed(f"expected WorkingDir and VOLUME {VOLUME}: {seen}")
    ok(f"image config: HEALTHCHECK kept, USER {config['User']}, WORKDIR and VOLUME {VOLUME}")
    return config


def check_files(root: Rootfs) -> None:
    info = (root.path / VOLUME.lstrip("/")).stat()
    seen = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    if seen != (UID, UID, 0o700):
        raise CheckFailed(f"{VOLUME} is owned {seen[0]}:{seen[1]} mode {seen[2]:o}, not {UID}:{UID} 700")
    ok(f"{VOLUME} is owned by {UID}:{UID}, mode 700 (a new named volume copies this)")
    probe = "import sys; print(sys._base_executable, sys.version.split()[0])"
    python = run(*root.command(["python", "-c", probe], {"PATH": image_env(root.config)["PATH"]}))
    ok(f"Python in the image is the base's: {python}")


@contextlib.contextmanager
def container(image: str, config: dict[str, Any], workdir: Path) -> Iterator[Rootfs]:
    with Rootfs(image, config) as root:
        root.mount("proc", "/proc", fstype="proc")
        root.mount("/dev", "/dev", "bind")
        root.mount("tmpfs", "/tmp", "mode=1777", fstype="tmpfs")
        secrets = workdir / "secrets"
        secrets.mkdir()
        (secrets / "scim_token").write_text(TOKEN, encoding="utf-8")
        for path in (secrets / "scim_token", workdir / "directory.json"):
            path.chmod(0o644)
        secrets.chmod(0o755)
        root.mount(secrets, "/run/secrets", "bind", "ro")
        root.mount(workdir / "directory.json", "/etc/syncd/directory.json", "bind", "ro")
        yield root


@contextlib.contextmanager
def postgres_server(password: str) -> Iterator[int | None]:
    """A throwaway PostgreSQL on 127.0.0.1 with password (SCRAM) authentication; None without its binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (found[-1] if found else None)
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        owner = None
    if initdb is None or owner is None:
        yield None
        return
    bindir = Path(initdb).resolve().parent
    with tempfile.TemporaryDirectory(prefix="syncd-standin-pg-") as tmp:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
        data, pwfile = Path(tmp) / "data", Path(tmp) / "password"
        pwfile.write_text(password, encoding="utf-8")
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
        run(
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "syncd",
            "-A",
            "scram-sha-256",
            f"--pwfile={pwfile}",
        )
        port = free_port()
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
        # -l: the server's output goes to a file, not to the pipes run() waits on.
        log = f"{tmp}/server.log"
        run(*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "-t", "120", "start")
        try:
            yield port
        finally:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                check=False,
            )


def check_pgpassfile(root: Rootfs, workdir: Path) -> None:
    """As compose.yaml sets it up: the PostgreSQL password only in a PGPASSFILE (0600, owned by 10001)."""
    password = uuid.uuid4().hex
    with postgres_server(password) as port:
        if port is None:
            print("skip: no PostgreSQL server binaries here, so PGPASSFILE is not exercised", flush=True)
            return
        pgpass = workdir / "secrets" / "pgpass"
        pgpass.write_text(f"127.0.0.1:{port}:postgres:syncd:{password}\n", encoding="utf-8")
        os.chown(pgpass, UID, UID)
        pgpass.chmod(0o600)
        env = image_env(
            root.config,
            SYNCD_CACHE__URL=f"postgresql+psycopg://syncd@127.0.0.1:{port}/postgres",
            PGPASSFILE="/run/secrets/pgpass",
        )
        upgraded = run(*root.command(["syncd", "db", "upgrade"], env))
        ok(f"PGPASSFILE (mode 0600, owned by {UID}) gets syncd into PostgreSQL: {upgraded}")
        pgpass.chmod(0o644)
        refused = subprocess.run(root.command(["syncd", "db", "upgrade"], env), capture_output=True, check=False)
        if refused.returncode == 0 or b"group or world access" not in refused.stderr:
            said = refused.stderr.decode(errors="replace")[-2000:]
            raise CheckFailed(f"a PGPASSFILE others can read: exit {refused.returncode}, no libpq warning:\n{said}")
        ok(f"a PGPASSFILE others can read is ignored by libpq (exit {refused.returncode}), as compose.yaml warns")


def main(image: str) -> None:
    config = check_config(image)
    with tempfile.TemporaryDirectory(prefix="syncd-standin-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        (workdir / "directory.json").write_text(json.dumps(EXPORT), encoding="utf-8")
        with container(image, config, workdir) as root:
            check_files(root)
            emulator = Process(
                root.command(
                    ["syncd", "emulator", "--port", "0", "--token", "file:/run/secrets/scim_token"], image_env(config)
                ),
                "syncd emulator",
            )
            try:
                line = emulator.wait_for(lambda s: "emulator at http://" in s, START_TIMEOUT, "it listened")
                scim_url = line[line.index("http://") :].strip()
                toml = workdir / "syncd.toml"
                toml.write_bytes(EXAMPLE.read_bytes())
                toml.chmod(0o644)
                root.mount(toml, "/etc/syncd/syncd.toml", "bind", "ro")
                daemon_run(root, config, scim_url)
                check_pgpassfile(root, workdir)
            finally:
                emulator.stop(signal.SIGINT)


def daemon_run(root: Rootfs, config: dict[str, Any], scim_url: str) -> None:
    port = free_port()
    env = image_env(
        config,
        SYNCD_HTTP__LISTEN=f"127.0.0.1:{port}",
        SYNCD_TARGET__SCIM_URL=scim_url,
        SYNCD_TARGET__SCIM_TOKEN="file:/run/secrets/scim_token",  # noqa: S106 - a reference, not a token
    )
    argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    daemon = Process(root.command(argv, env), " ".join(argv))
    try:
        daemon.wait_for(event("daemon.started"), START_TIMEOUT, "daemon.started")
        finished = daemon.wait_for(event("run.finished"), START_TIMEOUT, "its first run finished")
        record = json.loads(finished)
        if record.get("status") != "ok":
            raise CheckFailed(f"the first run ended {record.get('status')!r}: {finished}")
        users = scim_get(scim_url.rstrip("/") + "/Users")["totalResults"]
        groups = scim_get(scim_url.rstrip("/") + "/Groups")["totalResults"]
        if (users, groups) != (len(EXPORT["users"]), len(EXPORT["groups"])):
            raise CheckFailed(f"the emulator holds {users} users and {groups} groups after the run")
        ok(f"`{' '.join(argv)}` synced the mounted export: {users} users, {groups} group in the emulator")
        cache = root.path / VOLUME.lstrip("/") / "syncd.db"
        if not cache.is_file():
            raise CheckFailed(f"no cache at {VOLUME}/syncd.db: the default cache is not on the volume")
        info = cache.stat()
        if (info.st_uid, info.st_gid) != (UID, UID):
            raise CheckFailed(f"{cache.name} on the volume is owned by {info.st_uid}:{info.st_gid}")
        ok(f"the SQLite cache is {VOLUME}/syncd.db, owned by {UID}:{UID}")
        code = healthcheck(root, env)
        if code != 0:
            raise CheckFailed(f"the HEALTHCHECK command exited {code} against the running daemon")
        ok("the HEALTHCHECK command exits 0 against the running daemon")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            ok(f"/readyz answers {answer.status}")
        status = json.loads(run(*root.command(["syncd", "status", "--json"], env)))
        if [r["status"] for r in status["runs"]] != ["ok"] or not status["leader"]:
            raise CheckFailed(f"`syncd status --json` does not show the run and the leader: {status}")
        run_id, leader = status["runs"][0]["id"], status["leader"]["id"]
        ok(f"`syncd status` reads the cache on the volume: run {run_id} ok, leader {leader}")
    except BaseException:
        daemon.stop(signal.SIGKILL)
        daemon.drain()
        print("\n".join(daemon.seen[-30:]), file=sys.stderr)
        raise
    code = daemon.stop(signal.SIGTERM)
    daemon.drain()
    if code != 0 or not any(event("daemon.stopped")(line) for line in daemon.seen):
        raise CheckFailed(f"SIGTERM: exit code {code}:\n" + "\n".join(daemon.seen[-10:]))
    ok("SIGTERM stops it: exit code 0, daemon.stopped logged")
    after = healthcheck(root, env)
    if after == 0:
        raise CheckFailed("the HEALTHCHECK command still exits 0 with the daemon stopped")
    ok(f"the HEALTHCHECK command fails once it is stopped (exit {after})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if os.geteuid() != 0:
        sys.exit("standin: run as root (podman mount, mount and chroot need it)")
    try:
        main(sys.argv[1])
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    print("container check passed", flush=True)
