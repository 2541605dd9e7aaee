"""`make serve`: leadloop on a local Prefect server, connected out of the box to the sandbox CRMs.

In order, each in a process group of its own:

1. the Prefect server on 127.0.0.1, port LEADLOOP_SERVE_PORT, PREFECT_SERVER_API_PORT or PREFECT_API_URL's
   (4200 by default). A port held by anything else is refused (exit 2), saying what holds it; a server
   that an earlier `make serve` left running is taken over;
2. the sandbox CRMs (`leadloop sandbox serve`, state in .leadloop/serve/sandbox) and `leadloop crm setup`;
3. the sandbox's connection saved as the block `sandbox` (`leadloop connect`), with a SQLite store in
   .leadloop/serve;
4. the four deployments of deployments/prefect.yaml, whose `options.connection` names that block;
5. a process worker, in the foreground.

One Ctrl-C (or SIGTERM) stops all of it, flow runs included, within 10 s: the worker and its flow runs
first, while the server can still record how the runs ended, then SIGINT to the rest, SIGTERM, SIGKILL.
As a child subreaper, this process also finds what the worker's flow runs leave behind. After a make
serve killed outright, the next one stops the worker and sandbox it left, takes its server over and
marks the runs it left Running as Crashed. Everything stays in LEADLOOP_SERVE_DIR (.leadloop/serve;
PREFECT_HOME defaults to its `prefect` folder): delete it to start afresh.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
POOL = "leadloop-process"
BLOCK = "sandbox"
DEFAULT_PORT = 4200
HOST = "127.0.0.1"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEPLOYMENTS = ("hourly-sync", "rescore", "data-quality", "model-review")

# Ctrl-C: how long each stage is given before the next, harder one (together under 10 s): the worker
# and its flow runs, then SIGINT to the rest, SIGTERM, SIGKILL
GRACE_WORKER = 3.0
GRACE_SIGINT = 3.0
GRACE_SIGTERM = 1.5
GRACE_SIGKILL = 1.0


class ServeError(Exception):
    """What stops `make serve`, said in one screen; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while starting up."""


@dataclass(frozen=True)
class ServeConfig:
    port: int
    state_dir: Path
    prefect_home: Path
    own_home: bool  # PREFECT_HOME was not given: the folder is make serve's
    sandbox_size: str

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def connection_file(self) -> Path:
        return self.state_dir / "sandbox" / "connection.json"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.state_dir / 'state.db'}"


def _port(name: str, value: str) -> int:
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise ServeError(f"{name}={value!r} is not a port (1-65535)", code=2)
    return int(value)


def serve_config(environ: Mapping[str, str]) -> ServeConfig:
    """Where to serve, from the environment. The port comes from LEADLOOP_SERVE_PORT,
    PREFECT_SERVER_API_PORT or PREFECT_API_URL; given twice, the values must agree."""
    given: list[tuple[str, int]] = [(name, _port(name, environ[name]))
                                    for name in ("LEADLOOP_SERVE_PORT", "PREFECT_SERVER_API_PORT")
                                    if environ.get(name, "").strip()]
    if api_url := environ.get("PREFECT_API_URL", "").strip():
        parts = urlsplit(api_url)
        if parts.hostname not in LOOPBACK:
            raise ServeError(
                f"PREFECT_API_URL is {api_url}, not this machine: make serve runs a local Prefect server. "
                "Unset PREFECT_API_URL to serve here, or deploy to that server by hand "
                "(deployments/README.md).",
                code=2)
        try:
            port = parts.port
        except ValueError:
            raise ServeError(f"PREFECT_API_URL={api_url!r} has no valid port", code=2) from None
        if port is not None:
            given.append(("PREFECT_API_URL's port", port))
    if len({port for _, port in given}) > 1:
        said = ", ".join(f"{name} {port}" for name, port in given)
        raise ServeError(f"the port is given more than once, differently ({said}): give one", code=2)
    size = environ.get("LEADLOOP_SERVE_SANDBOX_SIZE", "").strip() or "small"
    if size not in ("tiny", "small", "medium", "large"):
        raise ServeError(f"LEADLOOP_SERVE_SANDBOX_SIZE={size!r}: use tiny, small, medium or large", code=2)
    state_dir = Path(environ.get("LEADLOOP_SERVE_DIR", "").strip() or PROJECT / ".leadloop" / "serve")
    state_dir = state_dir.resolve()
    home = environ.get("PREFECT_HOME", "").strip()
    return ServeConfig(port=given[0][1] if given else DEFAULT_PORT, state_dir=state_dir,
                       prefect_home=Path(home).expanduser().resolve() if home else state_dir / "prefect",
                       own_home=not home, sandbox_size=size)


# -- who holds the port --------------------------------------------------------------------------------

_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _get_json(url: str, timeout: float = 2.0) -> object:
    try:
        with _http.open(url, timeout=timeout) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def prefect_version(api_url: str) -> str | None:
    """The version of the Prefect server answering at `api_url`, or None when none does."""
    if _get_json(f"{api_url}/health") is not True:
        return None
    version = _get_json(f"{api_url}/admin/version")
    return version if isinstance(version, str) else None


def _post_json(url: str, body: object, timeout: float = 30.0) -> object:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _http.open(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def crash_leftover_runs(api_url: str) -> int:
    """Mark Crashed the flow runs of leadloop's pool still shown running: with no worker yet, their
    processes are gone (an earlier make serve was killed outright, or stopped while the server could
    not record it). Left Running, an hourly-sync run would hold the deployment's one concurrency slot,
    and no scheduled sync would start. Returns how many were marked."""
    left = _post_json(f"{api_url}/flow_runs/filter", {
        "flow_runs": {"state": {"type": {"any_": ["RUNNING", "PENDING", "CANCELLING"]}}},
        "work_pools": {"name": {"any_": [POOL]}}})
    marked = 0
    for run in left if isinstance(left, list) else []:
        answer = _post_json(f"{api_url}/flow_runs/{run['id']}/set_state", {"state": {
            "type": "CRASHED", "name": "Crashed",
            "message": "make serve stopped while this run was in progress; its worker is gone"}})
        marked += isinstance(answer, dict) and answer.get("status") == "ACCEPT"
    return marked


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> str | None:
    """A live process's command line, or None when there is no such process (or only a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stop_leftovers(config: ServeConfig) -> list[str]:
    """Stop the worker and sandbox that a make serve killed outright left running (its server is taken
    over instead); returns what was stopped."""
    children = _read_json(config.state_dir / "serve.json").get("children")
    marks = {"worker": "worker start", "sandbox": "sandbox serve"}
    found = {name: pid for name, pid in (children if isinstance(children, dict) else {}).items()
             if name in marks and isinstance(pid, int) and marks[name] in (_cmdline(pid) or "")}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in found.values():
            with contextlib.suppress(OSError):
                os.killpg(pid, sig)  # each was a session (and process group) of its own
        deadline = time.monotonic() + 5
        while any(_cmdline(pid) for pid in found.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    return [f"{name} (pid {pid})" for name, pid in found.items()]


def leftover_server(config: ServeConfig) -> int | None:
    """The pid of a Prefect server an earlier `make serve` started for this state folder and left
    running on this port, or None."""
    record = _read_json(config.state_dir / "server.json")
    pid = record.get("pid")
    if (not isinstance(pid, int) or record.get("port") != config.port
            or record.get("prefect_home") != str(config.prefect_home)):
        return None
    command = _cmdline(pid)
    if command is None or "prefect" not in command or " server start" not in command:
        return None
    return pid if prefect_version(config.api_url) else None


def running_serve(config: ServeConfig) -> int | None:
    """The pid of another `make serve` running on this state folder, or None."""
    record = _read_json(config.state_dir / "serve.json")
    pid = record.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return None
    command = _cmdline(pid) or ""
    return pid if "leadloop.deployments.serve" in command or "deployments/serve.py" in command else None


def port_refusal(config: ServeConfig) -> str:
    """Why the port cannot be used, and what to do: the holder is not a Prefect server of ours."""
    other_port = f"LEADLOOP_SERVE_PORT={config.port + 1} make serve"
    version = prefect_version(config.api_url)
    if version is not None:
        return (f"port {config.port} on {HOST} is held by a Prefect server ({version}) that make serve did "
                "not start: its deployments, blocks and workers would mix with leadloop's. Stop it, or serve "
                f"on another port: {other_port}")
    return (f"port {config.port} on {HOST} is held by something that is not a Prefect server (it does not "
            f"answer {config.api_url}/health as one); make serve will not share it. Free the port, or serve "
            f"on another: {other_port}")


# -- the processes -------------------------------------------------------------------------------------


def _become_subreaper() -> None:
    """Orphaned descendants (a flow run whose worker died) become this process's children, so
    stopping finds them. Linux only; elsewhere the process groups still cover the usual cases."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _process_table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, state) of every process visible in /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(roots: set[int]) -> dict[int, str]:
    """Every live descendant of `roots` (the roots included when alive): pid → state."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _state) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found[pid] = table[pid][1]
        todo += children.get(pid, [])
    return found


def _send(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


class Supervisor:
    """The processes make serve started (or took over), and stopping them all."""

    def __init__(self, env: dict[str, str], logs: Path, record: Path) -> None:
        self.env, self.logs, self.record = env, logs, record
        self.stop_requested = threading.Event()
        self.forced = threading.Event()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.adopted: set[int] = set()

    def on_signal(self, signum: int, _frame: object) -> None:
        if self.stop_requested.is_set():
            self.forced.set()  # a second Ctrl-C: no more waiting
        self.stop_requested.set()

    def start(self, name: str, args: list[str], *, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `args` in a new session (its own process group), output to `log` or this terminal."""
        if self.stop_requested.is_set():
            raise Stopped
        out = open(log, "ab") if log is not None else None  # noqa: SIM115 (the child keeps it)
        try:
            process = subprocess.Popen(args, env=self.env, cwd=PROJECT, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT if out else None,
                                       start_new_session=True)
        finally:
            if out is not None:
                out.close()
        self.children[name] = process
        self.record.write_text(json.dumps({"pid": os.getpid(), "children": {
            name: p.pid for name, p in self.children.items()}}))  # for a make serve after a kill -9
        return process

    def run(self, name: str, args: list[str], timeout: float) -> tuple[int, str]:
        """Run a one-shot command to its end (its output in logs/NAME.log): (exit code, output's tail)."""
        log = self.logs / f"{name}.log"
        log.unlink(missing_ok=True)
        process = self.start(name, args, log=log)
        self.wait_for(lambda: process.poll() is not None, name, timeout)
        del self.children[name]
        return process.returncode, log.read_text(errors="replace")[-3000:]

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float,
                 watch: tuple[str, subprocess.Popen[bytes], Path] | None = None) -> None:
        """Wait until `done()`; stop waiting on Ctrl-C (Stopped), after `timeout` or when the watched
        process exits first (ServeError, with its log's tail)."""
        deadline = time.monotonic() + timeout
        while not done():
            if watch is not None and watch[1].poll() is not None:
                name, process, log = watch
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise ServeError(f"{name} exited with code {process.returncode} before {what}; its log "
                                 f"({log}) ends with:\n{tail}")
            if time.monotonic() > deadline:
                raise ServeError(f"{what}: not within {timeout:.0f} s (logs in {self.logs})")
            if self.stop_requested.wait(0.25):
                raise Stopped

    def died(self) -> str | None:
        """The name of a long-running child that exited, or None."""
        for name, process in self.children.items():
            if process.poll() is not None:
                return f"{name} (exit code {process.returncode})"
        return None

    def stop_all(self) -> float:
        """Stop every process started or taken over, and all their descendants; returns the seconds
        taken. The worker goes first (SIGINT), its flow runs with it (SIGTERM, on which Prefect records
        them Crashed) while the server is still there to record it; then SIGINT to the rest, SIGTERM
        to whatever is left, SIGKILL. A second Ctrl-C cuts each grace period short."""
        started = time.monotonic()
        roots = {p.pid for p in self.children.values()} | self.adopted
        known: set[int] = set()
        self._alive(roots, known)
        worker = self.children.get("worker")
        if worker is not None and worker.poll() is None:
            runs = set(descendants({worker.pid})) - {worker.pid}
            _send({worker.pid}, signal.SIGINT)  # one signal each: Prefect escalates a second to SIGKILL
            _send(runs, signal.SIGTERM)
            self._wait(lambda: not ({worker.pid} | runs) & self._alive(roots, known), GRACE_WORKER)
        for sig, grace in ((signal.SIGINT, GRACE_SIGINT), (signal.SIGTERM, GRACE_SIGTERM),
                           (signal.SIGKILL, GRACE_SIGKILL)):
            alive = self._alive(roots, known)
            if not alive:
                break
            if sig == signal.SIGINT:
                _send(roots & alive, sig)  # each forwards it to its own children
            else:
                _send(alive, sig)
                for root in roots:  # a group's members this process cannot see as descendants
                    with contextlib.suppress(OSError):
                        os.killpg(root, sig)
            self._wait(lambda: not self._alive(roots, known), grace, hard=sig == signal.SIGKILL)
        self._alive(roots, known)
        return time.monotonic() - started

    def _wait(self, done: Callable[[], bool], grace: float, hard: bool = False) -> None:
        deadline = time.monotonic() + grace
        while not done() and time.monotonic() < deadline:
            if self.forced.wait(0.1) and not hard:
                return

    def _alive(self, roots: set[int], known: set[int]) -> set[int]:
        """The live processes of the tree (reaping what exited), remembered in `known` so that a
        process is still found after its parent is gone."""
        for process in self.children.values():
            process.poll()
        tree = descendants({os.getpid()} | roots)
        tree.pop(os.getpid(), None)
        known |= set(tree)
        mine = {p.pid for p in self.children.values()}
        for pid, state in tree.items():
            if state == "Z" and pid not in mine:  # an orphan reparented here: reap it
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
        return {pid for pid in known if _cmdline(pid) is not None}


# -- make serve ----------------------------------------------------------------------------------------


def _env(config: ServeConfig, environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    if config.own_home:
        env.pop("PREFECT_PROFILE", None)  # the profiles live in PREFECT_HOME: this one is new
    no_proxy = ",".join(filter(None, (environ.get("NO_PROXY", ""), "127.0.0.1,localhost")))
    env.update(PREFECT_HOME=str(config.prefect_home), PREFECT_API_URL=config.api_url,
               PREFECT_SERVER_API_HOST=HOST, PREFECT_SERVER_API_PORT=str(config.port),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", LEADLOOP_PROJECT_DIR=str(PROJECT),
               NO_PROXY=no_proxy, no_proxy=no_proxy)
    return env


def _leadloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "leadloop.cli.app", *args]


def _prefect(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("prefect")), *args]


def _sandbox_ready(path: Path) -> Callable[[], bool]:
    return lambda: bool(_read_json(path).get("sandbox_admin_url"))


def start_everything(config: ServeConfig, supervisor: Supervisor, leftover: int | None) -> None:
    """Server, sandbox and its set-up, the block, the deployments, the worker; returns once the worker
    runs."""
    config.logs.mkdir(parents=True, exist_ok=True)
    if leftover is not None:
        print(f"taking over the Prefect server an earlier make serve left running (pid {leftover})")
        supervisor.adopted.add(leftover)
    else:
        print(f"starting the Prefect server on {config.ui_url} (PREFECT_HOME {config.prefect_home}) ...")
        log = config.logs / "server.log"
        server = supervisor.start("server", _prefect("server", "start", "--host", HOST, "--port",
                                                     str(config.port)), log=log)
        # recorded at once: a make serve killed outright leaves a server the next one may take over
        (config.state_dir / "server.json").write_text(json.dumps(
            {"pid": server.pid, "port": config.port, "prefect_home": str(config.prefect_home)}))
        supervisor.wait_for(lambda: prefect_version(config.api_url) is not None,
                            "the Prefect server answered", 180, watch=("the Prefect server", server, log))

    try:
        if crashed := crash_leftover_runs(config.api_url):
            print(f"marked {crashed} flow run(s) an earlier make serve left running as Crashed")
    except (OSError, ValueError) as error:  # only housekeeping: serve on
        print(f"could not look for flow runs an earlier make serve left running: {error}")

    print(f"starting the sandbox CRMs (size {config.sandbox_size}) ...")
    config.connection_file.unlink(missing_ok=True)
    log = config.logs / "sandbox.log"
    sandbox = supervisor.start("sandbox", _leadloop(
        "sandbox", "serve", "--data-dir", str(config.connection_file.parent), "--connection-file",
        str(config.connection_file), "--port", "0", "--size", config.sandbox_size), log=log)
    supervisor.wait_for(_sandbox_ready(config.connection_file), "the sandbox was ready", 180,
                        watch=("the sandbox", sandbox, log))

    steps = (
        ("crm-setup", "creating leadloop's fields in the sandbox (leadloop crm setup)",
         _leadloop("crm", "setup", "--connection-file", str(config.connection_file)), True),
        ("connect", f"saving its connection as the block {BLOCK!r} (leadloop connect)",
         _leadloop("connect", "--name", BLOCK, "--connection-file", str(config.connection_file),
                   "--store-url", config.store_url, "--overwrite"), True),
        ("work-pool", f"creating the work pool {POOL}",
         _prefect("work-pool", "create", POOL, "--type", "process"), False),  # fails when it exists
        ("deploy", "deploying " + ", ".join(DEPLOYMENTS),
         _prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"), True),
    )
    for name, what, args, must in steps:
        print(f"{what} ...")
        code, output = supervisor.run(name, args, timeout=300)
        if code != 0 and must:
            raise ServeError(f"{name} failed with exit code {code}:\n{output}")

    supervisor.start("worker", _prefect("worker", "start", "--pool", POOL))
    sandbox_url = str(_read_json(config.connection_file).get("sandbox_admin_url", ""))
    sandbox_url = sandbox_url.removesuffix("/_sandbox")
    print(f"""
leadloop is served (Ctrl-C stops everything):
  Prefect UI    {config.ui_url}   (other terminals: export PREFECT_API_URL={config.api_url})
  deployments   {", ".join(DEPLOYMENTS)}, with options.connection = {BLOCK}
  sandbox CRMs  {sandbox_url}   (the block {BLOCK!r}; state in {config.connection_file.parent})
  state store   {config.store_url}
  logs          {config.logs}
Try: Deployments -> rescore -> Run -> Custom run, or `prefect deployment run hourly-sync/hourly-sync`.
""", flush=True)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Serve until Ctrl-C; the exit code: 0 after a Ctrl-C, 2 for a refused configuration or port,
    1 when something failed."""
    environ = dict(os.environ if environ is None else environ)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, also in a pipe
    try:
        config = serve_config(environ)
        if (other := running_serve(config)) is not None:
            raise ServeError(f"make serve is already running (pid {other}) on {config.state_dir}: use it, "
                             "or stop it first (Ctrl-C in its terminal)", code=2)
        leftover = None
        if not port_is_free(config.port):
            leftover = leftover_server(config)
            if leftover is None:
                raise ServeError(port_refusal(config), code=2)
    except ServeError as error:
        print(f"make serve: {error}", file=sys.stderr)
        return error.code

    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the store: personal data
    config.prefect_home.mkdir(parents=True, exist_ok=True)
    if stopped := stop_leftovers(config):
        print(f"stopped what an earlier make serve left running: {', '.join(stopped)}")
    record = config.state_dir / "serve.json"
    record.write_text(json.dumps({"pid": os.getpid()}))
    _become_subreaper()
    supervisor = Supervisor(_env(config, environ), config.logs, record)
    previous = {sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        start_everything(config, supervisor, leftover)
        while not supervisor.stop_requested.wait(1.0):
            if (gone := supervisor.died()) is not None:
                raise ServeError(f"{gone} stopped unexpectedly; logs in {config.logs}")
    except Stopped:
        pass
    except ServeError as error:
        print(f"make serve: {error}", file=sys.stderr)
        code = error.code
    finally:
        print("stopping the worker, the sandbox and the Prefect server ...", flush=True)
        seconds = supervisor.stop_all()
        (config.state_dir / "server.json").unlink(missing_ok=True)
        (config.state_dir / "serve.json").unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"stopped in {seconds:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
