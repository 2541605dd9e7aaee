"""The installed product, outside the repository: the wheel `pip wheel .` builds, installed into a
clean virtual environment, run from an empty folder as a new user would.

The environment gets leadloop's dependencies from this project's own environment (every installed
distribution except leadloop's editable install, linked into a folder the clean venv reads through a
`.pth` file), so the test needs no network and checks exactly the wheel, not the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, env: dict[str, str],
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


DOCKERFILE = PROJECT / "deployments" / "Dockerfile"
UNCOPIED = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info")


def dockerfile_build_stage() -> tuple[list[tuple[str, str]], str]:
    """The build stage's `COPY src dst` pairs and its `pip wheel` command, as the image builds it."""
    copies, wheel_command, stage = [], "", 0
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            stage += 1
        elif stage == 1 and line.startswith("COPY "):
            *sources, target = line.split()[1:]
            copies += [(s, target) for s in sources]
        elif stage == 1 and line.startswith("RUN pip wheel"):
            wheel_command = line.removeprefix("RUN ")
    return copies, wheel_command


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built as the container image builds it: only the files deployments/Dockerfile copies, with its
    own `pip wheel` command. (A copy also keeps an in-tree build from reusing whatever an earlier
    build left in build/, and shipping files the packaging no longer names.)"""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    copies, command = dockerfile_build_stage()
    assert copies and command.startswith("pip wheel") and command.endswith(" ."), command
    for name, target in copies:
        if (PROJECT / name).is_dir():
            shutil.copytree(PROJECT / name, source / target, ignore=UNCOPIED)
        else:
            shutil.copy(PROJECT / name, source / target.rstrip("/") if target != "./" else source)
    command = command.replace("/dist", str(out)).split()
    built = subprocess.run([sys.executable, "-m", *command], cwd=source, capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = out.glob("leadloop-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A clean venv with the wheel installed and the dependencies linked in; yields its environment."""
    root = tmp_path_factory.mktemp("clean")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    deps = root / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if entry.name.startswith(("leadloop", "__editable__", "_leadloop")) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(python), "-c", purelib], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "leadloop-deps.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_", "PYTHON"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", PREFECT_HOME=str(root / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="120")
    install = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel,
                   cwd=root, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    yield env


def test_the_wheel_installs_one_import_name_and_ships_the_playbooks(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("leadloop-")}
    assert top == {"leadloop"}, top
    assert {"leadloop/playbooks/semiconductor.yaml", "leadloop/playbooks/industrial.yaml"} <= set(names)
    assert any(n.startswith("leadloop/flows/templates/") and n.endswith(".j2") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    web = [line for line in requires if any(w in line for w in ("fastapi", "uvicorn", "trustme"))]
    assert web and all("extra ==" in line for line in web), web  # the sandbox's web stack is an extra


def test_the_installed_cli_checks_serves_sets_up_and_syncs_from_an_empty_folder(installed, tmp_path) -> None:
    env, folder = installed, tmp_path / "empty"
    folder.mkdir()
    leadloop = Path(env["PATH"].split(":")[0]) / "leadloop"

    checked = _run(leadloop, "playbook", "check", "semiconductor", cwd=folder, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid playbook" in checked.stdout
    unknown = _run(leadloop, "playbook", "check", "semicondutor", cwd=folder, env=env)
    assert unknown.returncode == 2 and "semiconductor" in unknown.stderr and "Traceback" not in unknown.stderr

    # the user's own folder: the sandbox writes .leadloop/sandbox/connection.json and its CA here
    sandbox = subprocess.Popen([str(leadloop), "sandbox", "serve", "--size", "tiny", "--port", "0",
                                "--data-dir", "sandbox-data"], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    connection = folder / ".leadloop" / "sandbox" / "connection.json"
    try:
        deadline = time.monotonic() + 120
        while not connection.exists():
            assert sandbox.poll() is None, sandbox.stdout.read() if sandbox.stdout else ""
            assert time.monotonic() < deadline, "the sandbox was not ready within 120 s"
            time.sleep(0.2)
        assert Path(json.loads(connection.read_text())["ca_cert"]).is_file()

        setup = _run(leadloop, "crm", "setup", "--connection-file", connection, cwd=folder, env=env)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        synced = _run(leadloop, "sync", "--connection-file", connection, cwd=folder, env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        again = _run(leadloop, "sync", "--connection-file", connection, cwd=folder, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=60)
    # what ran was the wheel, not the checkout
    where = _run(Path(env["PATH"].split(":")[0]) / "python", "-c",
                 "import leadloop.scoring as s; print(s.__file__)", cwd=folder, env=env)
    assert where.returncode == 0 and not where.stdout.strip().startswith(str(PROJECT)), where.stdout
    bare = _run(Path(env["PATH"].split(":")[0]) / "python", "-c", "import scoring", cwd=folder, env=env)
    assert bare.returncode != 0  # one import name: nothing generic is installed at the top level


def test_the_images_commands_run_from_the_installed_wheel(installed, tmp_path) -> None:
    """What the container runs, minus Docker (not available here): its CMD, and each module-path
    entrypoint of deployments/prefect-docker.yaml loaded as a worker loads it, from an empty folder."""
    env, bin_dir = installed, Path(installed["PATH"].split(":")[0])
    cmd = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD "))
    started = _run(*json.loads(cmd.removeprefix("CMD ")), cwd=tmp_path, env=env)
    assert started.returncode == 0 and "sync" in started.stdout, started.stdout + started.stderr

    import yaml

    spec = yaml.safe_load((PROJECT / "deployments" / "prefect-docker.yaml").read_text())
    entrypoints = [d["entrypoint"] for d in spec["deployments"]]
    assert all(":" not in e and not e.endswith(".py") for e in entrypoints), entrypoints  # module paths
    load = ("import sys; from prefect.flows import load_flow_from_entrypoint as load; "
            "print([load(e, use_placeholder_flow=False).name for e in sys.argv[1:]])")
    loaded = _run(bin_dir / "python", "-c", load, *entrypoints, cwd=tmp_path, env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert loaded.stdout.split("[")[-1].count("'") == 2 * len(entrypoints)
    for deployment in spec["deployments"]:  # every parameter the file sets is one the flow accepts
        options = deployment["parameters"]["options"]
        check = (f"import sys, json; from prefect.flows import load_flow_from_entrypoint as load; "
                 f"f = load({deployment['entrypoint']!r}, use_placeholder_flow=False); "
                 f"from typing import get_type_hints; t = get_type_hints(f.fn)['options']; "
                 f"opts = [a for a in getattr(t, '__args__', (t,)) if a is not type(None)][0]; "
                 f"opts(**json.loads(sys.argv[1]))")
        validated = _run(bin_dir / "python", "-c", check, json.dumps(options), cwd=tmp_path, env=env)
        assert validated.returncode == 0, f"{deployment['name']}: {validated.stderr[-2000:]}"
