"""`make serve`: a local Prefect server with leadloop's deployments and a process worker.

Starts `prefect server start` on 127.0.0.1:4200 (unless one already answers there), creates the
process work pool, deploys everything in deployments/prefect.yaml, then runs a worker in the
foreground until Ctrl-C. Open http://127.0.0.1:4200 to see the schedules and start a rescore.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
API_URL = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api")
POOL = "leadloop-process"


def _prefect(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("prefect")
    return subprocess.run([str(exe), *args], env=env, cwd=PROJECT, check=check, text=True,
                          capture_output=True)


def server_is_up(api_url: str = API_URL) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def deploy_all(env: dict[str, str]) -> None:
    """Create the work pool (if needed) and deploy everything in prefect.yaml."""
    _prefect("work-pool", "create", POOL, "--type", "process", env=env, check=False)
    result = _prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml",
                      env=env, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"prefect deploy failed with exit code {result.returncode}")


def main() -> None:
    env = dict(os.environ, PREFECT_API_URL=API_URL, LEADLOOP_PROJECT_DIR=str(PROJECT),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    server = None
    if not server_is_up():
        print("starting a Prefect server on http://127.0.0.1:4200 ...")
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
             "--port", "4200"], env=env, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not server_is_up():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the Prefect server did not come up within 120 s")
            time.sleep(1)
    deploy_all(env)
    print("deployments registered: hourly-sync, rescore, data-quality, model-review")
    print("open http://127.0.0.1:4200 — Deployments → rescore → Run → Custom run to start a rescore")
    worker = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "worker", "start",
                               "--pool", POOL], env=env, cwd=PROJECT)
    try:
        worker.wait()
    except KeyboardInterrupt:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
