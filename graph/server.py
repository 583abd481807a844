"""The managed Neo4j server: neo4j.conf, initial password, detached launch, readiness, stop, status.

It runs `org.neo4j.server.CommunityEntryPoint` with plain `java` on the jars that `install.py`
assembled, in its own process group, loopback only, with auth on. See docs/neo4j.md in shared/.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kgctl.core.errors import KgctlError
from kgctl.core.settings import ServerSettings, Settings
from kgctl.graph.install import Distribution, distribution, find_java, install

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
PRIVATE_UMASK = 0o077  # files the server and neo4j-admin create: readable by the owner only

# Exit codes of NeoBootstrapper, for the one-line reason when startup fails.
EXIT_REASONS = {
    1: "web server or general startup error (is a port in use?)",
    2: "database startup error (is another process using this store?)",
    3: "invalid configuration, or heap + page cache larger than this machine's memory",
}

# The JVM flags of Neo4j's default neo4j.conf; a direct launch must pass them itself.
# -XX:+AlwaysPreTouch is left out: touching a multi-GB heap up front slows every start.
JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
)

_SIZE = re.compile(r"^[1-9][0-9]*[kmgKMG]?$")
_CONF_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
_MIB = 1024 * 1024
# Neo4j preallocates each transaction log file (db.tx_log.rotation.size); a database that cannot
# starts read-only and never answers, so a start needs that much free space and some to spare.
TX_LOG_ROTATION_MIB = 256  # Neo4j's default
START_MARGIN = 64 * _MIB
# A database that failed to start (in debug.log), and why when the disk is full.
_DATABASE_FAILED = re.compile(r"Failed to start DatabaseId\{\w+\[([^\]]+)\]\}")
_DISK_FULL = "No space left on device"


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory(total_bytes: int) -> tuple[str, str]:
    """Heap and page cache for a machine: a sixth of RAM for heap (0.5–4 GiB), a quarter for pages
    (0.25–8 GiB), leaving the rest to Python and the OS, which train the models."""
    heap = min(max(total_bytes // 6, 512 * _MIB), 4096 * _MIB)
    pagecache = min(max(total_bytes // 4, 256 * _MIB), 8192 * _MIB)
    return f"{heap // (256 * _MIB) * 256}m", f"{pagecache // (256 * _MIB) * 256}m"


@dataclass(frozen=True)
class ServerConfig:
    """Everything one managed server instance needs; tests make throwaway ones on free ports."""

    home: Path
    password_file: Path
    distribution: Distribution
    server: ServerSettings = field(default_factory=ServerSettings)
    java: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerConfig:
        return cls(
            home=settings.paths.server_home,
            password_file=settings.paths.password_file,
            distribution=distribution(settings.paths.cache_dir),
            server=settings.server,
        )


class ManagedServer:
    """One Neo4j instance whose store, config, logs and pid file live under `config.home`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.home = config.home.resolve()

    @classmethod
    def from_settings(cls, settings: Settings) -> ManagedServer:
        return cls(ServerConfig.from_settings(settings))

    # ---- where things are -------------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "neo4j.log"

    @property
    def debug_log(self) -> Path:
        return self.home / "logs" / "debug.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.config.server.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.config.server.http_port}/"

    @property
    def browser_url(self) -> str:
        return f"{self.http_url}browser/"

    # ---- configuration ----------------------------------------------------------------------
    def memory(self) -> tuple[str, str]:
        heap, pagecache = default_memory(machine_memory_bytes())
        heap, pagecache = self.config.server.heap or heap, self.config.server.pagecache or pagecache
        for key, value in (("heap", heap), ("pagecache", pagecache)):
            if not _SIZE.match(value):
                raise KgctlError(f"server.{key} must be a size like 512m or 4g, got {value!r}")
        return heap, pagecache

    def settings(self) -> dict[str, str]:
        """The neo4j.conf entries, kgctl's defaults overridden by [server.settings]."""
        heap, pagecache = self.memory()
        bolt, http = self.config.server.bolt_port, self.config.server.http_port
        data = self.data_dir
        conf = {
            "server.default_listen_address": "127.0.0.1",
            "server.default_advertised_address": "127.0.0.1",
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"127.0.0.1:{bolt}",
            "server.bolt.advertised_address": f"127.0.0.1:{bolt}",
            "server.http.enabled": "true",
            "server.http.listen_address": f"127.0.0.1:{http}",
            "server.http.advertised_address": f"127.0.0.1:{http}",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "server.memory.heap.initial_size": heap,
            "server.memory.heap.max_size": heap,
            "server.memory.pagecache.size": pagecache,
            "server.directories.data": str(data),
            "server.directories.logs": str(self.home / "logs"),
            "server.directories.run": str(self.home / "run"),
            "server.directories.import": str(self.home / "import"),
            "server.directories.plugins": str(self.config.distribution.plugins),
            "server.directories.transaction.logs.root": str(data / "transactions"),
            "db.tx_log.rotation.retention_policy": "2 days 2G",
            "dbms.usage_report.enabled": "false",
            "client.allow_telemetry": "false",  # Neo4j Browser's usage reporting and its banner
            # Where Browser may fetch guides and stylesheets from, `kgctl browser --serve`'s
            # loopback server among them (Neo4j 5.26 still names the setting a whitelist).
            "browser.remote_content_hostname_whitelist": "guides.neo4j.com,localhost,127.0.0.1",
            "dbms.security.procedures.unrestricted": "apoc.*",
            # Bolt's Netty event loops idle through a 5 s quiet period each at shutdown, after every
            # database has already stopped and checkpointed: stop took 10.4 s, now under 1 s.
            "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
        }
        conf.update(self.config.server.settings)
        for key, value in conf.items():
            if not _CONF_KEY.match(key) or "\n" in value or "\r" in value:
                raise KgctlError(f"neo4j.conf setting {key!r} has an invalid key or value")
        return conf

    def write_config(self, read_only: tuple[str, ...] = ()) -> Path:
        for sub in ("conf", "data", "logs", "run", "import"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)  # the store, auth.ini and the logs: the owner's only
        lines = ["# Written by kgctl at every start: change kgctl.toml ([server], [server.settings])."]
        settings = self.settings()
        if read_only:
            settings["server.databases.read_only"] = ",".join(read_only)
        lines += [f"{k}={v}" for k, v in settings.items()]
        path = self.conf_dir / "neo4j.conf"
        path.write_text("\n".join(lines) + "\n")
        (self.conf_dir / "apoc.conf").write_text(
            "apoc.export.file.enabled=true\napoc.import.file.enabled=true\napoc.import.file.use_neo4j_config=true\n"
        )
        return path

    # ---- credentials ------------------------------------------------------------------------
    def password(self) -> str:
        try:
            return self.config.password_file.read_text().strip()
        except FileNotFoundError as exc:
            raise KgctlError(
                f"no password file at {self.config.password_file}: start the server with `kgctl db start` to create one"
            ) from exc

    def _ensure_password(self, java: str) -> None:
        """Generate the password on first use (mode 0600) and set it before the store's first start."""
        pw_file = self.config.password_file
        initialised = (self.data_dir / "databases" / "system").exists()
        if not pw_file.exists():
            if initialised:
                raise KgctlError(
                    f"the store in {self.data_dir} was initialised with a password that is no longer in "
                    f"{pw_file}; restore that file, or delete {self.home} to start over"
                )
            pw_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_password() + "\n")
        os.chmod(pw_file, 0o600)
        if initialised:
            return
        if not re.fullmatch(r"[A-Za-z0-9]+", self.password()):
            raise KgctlError(
                f"the password in {pw_file} must be letters and digits only (one "
                "token); delete the file to have kgctl generate one"
            )
        env = {**os.environ, "NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.conf_dir)}
        # `@FILE` is picocli's argument file: the password never appears on a command line (ps).
        cmd = [
            java,
            "-cp",
            f"{self.config.distribution.lib}/*",
            ADMIN_CLASS,
            "dbms",
            "set-initial-password",
            f"@{pw_file}",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, umask=PRIVATE_UMASK)
        if proc.returncode != 0:
            raise KgctlError(
                "neo4j-admin could not set the initial password",
                detail=without_stack_frames(proc.stdout + proc.stderr, keep=15),
            )

    # ---- process ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The live server's pid, or None; a stale pid file (crash, reboot) is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _is_server_process(pid, self.home):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start and stop of this home across processes (two racing `db start`s)."""
        lock_file = self.home / "run" / "kgctl.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def start(
        self, on_wait: Callable[[str], None] | None = None, *, read_only: tuple[str, ...] = ()
    ) -> dict[str, object]:
        """Start detached and wait until Bolt accepts the stored password; a no-op when running.
        `read_only` databases refuse every write until the next start without them."""
        with self._lock():
            return self._start(on_wait, read_only)

    def _start(self, on_wait: Callable[[str], None] | None, read_only: tuple[str, ...] = ()) -> dict[str, object]:
        running = self.pid()
        if running is not None:  # perhaps still starting (an interrupted `db start`): wait for it
            log_offset = _size_of(self.log_file)
            debug_offset = _size_of(self.debug_log)
            self._wait_ready(
                lambda: None if _process_alive(running) else -1, running, log_offset, debug_offset, owned=False
            )
            return {"already_running": True, "pid": running, **self.endpoints()}
        java = find_java(self.config.java).path
        dist = self.config.distribution
        if not dist.is_installed():
            if on_wait:
                on_wait(f"Fetching Neo4j {dist.pins.neo4j} from Maven Central")
            install(dist, java=self.config.java)
        self._check_ports()
        self._check_disk()
        self.write_config(read_only)
        self._ensure_password(java)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_offset = _size_of(self.log_file)
        debug_offset = _size_of(self.debug_log)
        heap, _ = self.memory()
        cmd = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *JVM_FLAGS,
            "-cp",
            dist.classpath(),
            MAIN_CLASS,
            f"--home-dir={self.home}",
            f"--config-dir={self.conf_dir}",
            "--console-mode",
        ]
        started = time.perf_counter()
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        if on_wait:
            on_wait(f"Waiting for Neo4j to answer on {self.bolt_uri}")
        self._wait_ready(proc.poll, proc.pid, log_offset, debug_offset)
        return {
            "already_running": False,
            "pid": proc.pid,
            "start_seconds": round(time.perf_counter() - started, 2),
            **self.endpoints(),
        }

    def _check_ports(self) -> None:
        for name, port in (
            ("bolt", self.config.server.bolt_port),
            ("http", self.config.server.http_port),
        ):
            if not port_is_free(port):
                raise KgctlError(
                    f"port {port} ({name}) on 127.0.0.1 is already in use by another process: stop "
                    f"it, or choose another port with server.{name}_port in kgctl.toml"
                )

    def _check_disk(self) -> None:
        """Refuse to start, before anything is written, when the disk of the store has no room
        for a transaction log file (Neo4j would start with its databases failed)."""
        rotation = self.settings().get("db.tx_log.rotation.size", f"{TX_LOG_ROTATION_MIB}m")
        need = (size_bytes(rotation) or TX_LOG_ROTATION_MIB * _MIB) + START_MARGIN
        where = self.data_dir
        while not where.exists():  # the nearest folder that is there (a first start)
            where = where.parent
        free = shutil.disk_usage(where).free
        if free < need:
            raise KgctlError(
                f"only {free // _MIB} MiB free on the disk holding {self.data_dir}: Neo4j needs "
                f"{need // _MIB} MiB to start (it preallocates {rotation} transaction log files); "
                "free some space, then run `kgctl db start` again"
            )

    def _failed_database(self, debug_offset: int) -> str | None:
        """Why a database failed to start since `debug_offset` of debug.log, or None."""
        try:
            with open(self.debug_log, "rb") as handle:
                handle.seek(debug_offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return None
        failed = _DATABASE_FAILED.search(text)
        if failed is None:
            return None
        if _DISK_FULL in text:
            return (
                f"database {failed.group(1)!r} could not start: the disk holding {self.data_dir} "
                "is full; free some space, then run `kgctl db start` again"
            )
        return f"database {failed.group(1)!r} could not start (log: {self.debug_log})"

    def _give_up(self, pid: int) -> None:
        """Stop a server this process started and that will not answer, and wait until it has."""
        os.kill(pid, signal.SIGTERM)
        _wait_for_exit(pid, 60)
        self.pid_file.unlink(missing_ok=True)

    def _wait_ready(
        self, poll: Callable[[], int | None], pid: int, log_offset: int, debug_offset: int, *, owned: bool = True
    ) -> None:
        """Until Bolt accepts the password and the home database answers; `poll` gives the exit
        code once the process has ended, and a database that failed to start (debug.log) ends
        the wait at once. A server this call did not start (`owned` false) is left running."""
        # the driver is imported here, so that `kgctl db status` of a stopped server needs none
        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired, TransientError

        deadline = time.monotonic() + self.config.server.start_timeout
        auth = ("neo4j", self.password())
        while time.monotonic() < deadline:
            code = poll()
            if code is not None:
                self.pid_file.unlink(missing_ok=True)
                reason = EXIT_REASONS.get(code, "see the log")
                raise KgctlError(
                    f"Neo4j exited during startup with code {code}: {reason} (log: {self.log_file})",
                    detail=self.log_tail(log_offset),
                )
            failed = self._failed_database(debug_offset)
            if failed is not None:
                if owned:
                    self._give_up(pid)
                raise KgctlError(f"Neo4j started but {failed}", detail=self.log_tail(log_offset))
            if _port_open(self.config.server.bolt_port):
                with GraphDatabase.driver(self.bolt_uri, auth=auth) as driver:
                    try:
                        driver.verify_connectivity()
                        with driver.session() as session:  # one try: no retries by the driver
                            session.run("RETURN 1").consume()  # the home database answers too
                        return
                    except AuthError as exc:
                        raise KgctlError(
                            f"Neo4j is running (pid {pid}) but rejected the password in "
                            f"{self.config.password_file}: the store was set up with another one"
                        ) from exc
                    except (ServiceUnavailable, SessionExpired, TransientError, OSError):
                        pass  # Bolt is listening but the database is still starting
            time.sleep(0.25)
        if owned:
            self._give_up(pid)
        raise KgctlError(
            f"Neo4j did not answer on {self.bolt_uri} within {self.config.server.start_timeout:.0f} s"
            + (" and was stopped" if owned else f" (pid {pid} left running)")
            + "; raise server.start_timeout in kgctl.toml if recovery needs longer",
            detail=self.log_tail(log_offset),
        )

    def stop(self, *, force: bool = False, timeout: float | None = None) -> dict[str, object]:
        """SIGTERM and wait; past the timeout give up loudly, or SIGKILL with `force`."""
        with self._lock():
            return self._stop(force, timeout)

    def _stop(self, force: bool, timeout: float | None) -> dict[str, object]:
        pid = self.pid()
        if pid is None:
            return {"was_running": False}
        timeout = self.config.server.stop_timeout if timeout is None else timeout
        started = time.perf_counter()
        os.kill(pid, signal.SIGTERM)
        stopped = _wait_for_exit(pid, timeout)
        killed = False
        if not stopped and force:
            os.kill(pid, signal.SIGKILL)
            stopped, killed = _wait_for_exit(pid, 30), True
        if not stopped:
            raise KgctlError(
                f"Neo4j (pid {pid}) is still running {timeout:.0f} s after SIGTERM (log: "
                f"{self.log_file}); `kgctl db stop --force` kills it and the next start runs recovery",
                detail=self.log_tail(),
            )
        self.pid_file.unlink(missing_ok=True)
        return {
            "was_running": True,
            "pid": pid,
            "killed": killed,
            "stop_seconds": round(time.perf_counter() - started, 2),
        }

    # ---- reporting --------------------------------------------------------------------------
    def endpoints(self) -> dict[str, object]:
        return {
            "bolt_uri": self.bolt_uri,
            "browser_url": self.browser_url,
            "http_url": self.http_url,
        }

    def store_size_bytes(self) -> int:
        total = 0
        for sub in ("databases", "transactions"):
            for path in (self.data_dir / sub).rglob("*"):
                try:
                    if path.is_file():
                        total += path.stat().st_size
                except OSError:  # a file rotated away while we walked
                    continue
        return total

    def status(self) -> dict[str, object]:
        """What can be known without connecting: process, endpoints, files, store size."""
        pid = self.pid()
        return {
            "managed": True,
            "running": pid is not None,
            "pid": pid,
            **self.endpoints(),
            "installed": self.config.distribution.is_installed(),
            "distribution": str(self.config.distribution.root),
            "home": str(self.home),
            "log_file": str(self.log_file),
            "password_file": str(self.config.password_file),
            "store_size_bytes": self.store_size_bytes(),
        }

    def log_tail(self, offset: int = 0, lines: int = 25) -> str:
        """The last lines this run wrote to the log, Java stack frames dropped."""
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return without_stack_frames(text, keep=lines)


def _size_of(path: Path) -> int:
    """Where a log ends now (0 before it exists): what a start writes comes after it."""
    return path.stat().st_size if path.exists() else 0


def size_bytes(value: str) -> int | None:
    """A Neo4j size setting (`256m`, `1G`, `512MiB`, `1048576`) in bytes, or None."""
    found = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", value, re.IGNORECASE)
    if found is None:
        return None
    power = "kmgt".find(found.group(2).lower()) + 1 if found.group(2) else 0
    return int(float(found.group(1)) * 1024**power)


def without_stack_frames(text: str, keep: int) -> str:
    """The last `keep` non-blank lines of Java output, stack frames dropped (messages and
    "Caused by" lines stay)."""
    lines = [line for line in text.splitlines() if line.strip() and not re.match(r"^\s+(at |\.\.\. \d+ more)", line)]
    return "\n".join(lines[-keep:])


def generate_password(length: int = 32) -> str:
    """Letters and digits only: a leading '-' would be read as an option by neo4j-admin, and
    users paste this into Neo4j Browser."""
    import secrets  # here: only the first start needs it

    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    try:  # reap our own exited child so that it does not linger as a zombie
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """An exited process that another parent has not reaped yet (e.g. a server started by a
    long-lived Python process and stopped by another): it is gone for our purposes."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (OSError, ValueError):
        return False
    # A JVM's main thread can be a zombie while its other threads still run (and hold ports).
    return status.get("State", "").strip().startswith("Z") and status.get("Threads", "").strip() in {"0", "1"}


def _is_server_process(pid: int, home: Path) -> bool:
    """True when `pid` is alive and is the Neo4j of this home (a recycled pid is not)."""
    if not _process_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no procfs (macOS): trust the live pid
        return True
    try:
        args = cmdline.read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return False
    return MAIN_CLASS in args and f"--home-dir={home}" in args


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _process_alive(pid):
            return True
        time.sleep(0.2)
    return not _process_alive(pid)
