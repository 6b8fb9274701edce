"""Shared pieces of the benchmark scripts: servers, wrk, sign-in, memory.

Every figure is measured in the same run as its baseline, because these machines are shared
and noisy: ratios and counts are comparable between runs, absolute numbers are not.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    say("wrk is missing; installing it from Debian's packages…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL, env=env
    )
    return shutil.which("wrk")


def database_url(kind: str, name: str) -> str:
    """A fresh, empty database of that kind for one benchmark run."""
    if kind == "sqlite":
        (ROOT / "tmp").mkdir(exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="bench-", dir=ROOT / "tmp"))
        return f"sqlite:///{folder / (name + '.db')}"
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def app_environment(db_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "benchmark-secret-key-not-for-production",
        "SECRETS_KEYS": "7vY2mvLMaTUSb5ogjqrwPxtDN7HuQSumKUBysuHDL8o=",  # benchmarks only
        "RATELIMIT_ENABLED": "0",
        "SESSION_COOKIE_SECURE": "0",
        "FLASK_DEBUG": "0",
        # Production mode needs a host; Werkzeug compares it without the port.
        "SERVER_NAME": "127.0.0.1",
        "DEV_MAILBOX": "0",
    }


def python_module(env: dict, module: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def flask_command(env: dict, *args: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@dataclass
class Server:
    process: subprocess.Popen
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each gunicorn worker (children of the master), in MB."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        sizes = []
        for pid in children.read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
            sizes.append(kb / 1024)
        return sizes

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_gunicorn(app_spec: str, env: dict, workers: int = 2, ready_path: str = "/") -> Server:
    """Serve `app_spec` with gunicorn's sync workers; return once `ready_path` answers 2xx."""
    port = free_port()
    command = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app_spec,
    ]
    server = Server(subprocess.Popen(command, cwd=ROOT, env=env), port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(server.base + ready_path)
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{app_spec} did not start on port {port}")


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: str = ""  # what wrk called them, e.g. "non-2xx 1, timeout 2"


def _to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 8,
    cookie: str | None = None,
    script: str | None = None,
) -> WrkResult:
    command = [ensure_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if script:
        command += ["-s", script]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    kinds = {}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        kinds["non-2xx"] = int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors:(.*)", output)
    if socket_errors:
        for name, count in re.findall(r"(\w+) (\d+)", socket_errors.group(1)):
            kinds[name] = int(count)
    kinds = {name: count for name, count in kinds.items() if count}
    detail = ", ".join(f"{name} {count}" for name, count in kinds.items())
    return WrkResult(rps, p50, p99, sum(kinds.values()), detail)


class Browser:
    """Just enough of a browser to sign in: a cookie jar and each form's CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post_form(self, path: str, fields: dict, form_page: str | None = None) -> str:
        page = self.get(form_page or path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        data = {"csrf_token": token.group(1), **fields} if token else fields
        body = urllib.parse.urlencode(data).encode()
        with self.opener.open(self.base + path, data=body, timeout=10) as response:
            return response.read().decode()

    def sign_in(self, email: str, password: str, totp_secret: str | None = None) -> None:
        page = self.post_form("/login", {"email": email, "password": password})
        if totp_secret and 'name="code"' in page:
            import pyotp

            self.post_form("/login/code", {"code": pyotp.TOTP(totp_secret).now()})
        if "Sign out" not in self.get("/"):
            raise RuntimeError(f"could not sign in as {email}")

    def csrf_token(self, path: str) -> str:
        page = self.get(path)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def machine_summary() -> str:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    return f"{os.cpu_count()} cores, {total_kb / 1024 / 1024:.1f} GiB memory"
