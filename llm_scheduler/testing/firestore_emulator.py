"""Google's Cloud Firestore emulator, run as a child JVM for tests.

The emulator jar is started directly (not through ``gcloud emulators firestore start``, which
forks a JVM we would not own), so `FirestoreEmulator.stop` ends exactly the process it started.
Its output goes to a log file, never to a pipe that could fill up and stall it. Every project id
is a separate, empty database in the emulator, so tests can isolate themselves by project id
instead of calling `FirestoreEmulator.reset`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from types import TracebackType

__all__ = ["DEFAULT_JAR", "JAR_ENV", "FirestoreEmulator", "emulator_available", "find_jar"]

JAR_ENV = "FIRESTORE_EMULATOR_JAR"
DEFAULT_JAR = pathlib.Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
)
_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
_JAR_IN_SDK = pathlib.Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
# How much of the log an error message quotes: enough for a Java stack trace's first lines.
_LOG_TAIL_CHARS = 4000


def find_jar() -> pathlib.Path | None:
    """The emulator jar: ``$FIRESTORE_EMULATOR_JAR``, the Debian SDK path, or next to ``gcloud``."""
    override = os.environ.get(JAR_ENV)
    if override:
        # An explicit path is never second-guessed: if it is wrong, say so rather than
        # silently running another emulator.
        return pathlib.Path(override)
    candidates = [DEFAULT_JAR]
    gcloud = shutil.which("gcloud")
    if gcloud:
        # gcloud lives in SDK_ROOT/bin; the emulator component in SDK_ROOT/platform.
        candidates.append(pathlib.Path(gcloud).resolve().parent.parent / _JAR_IN_SDK)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def emulator_available() -> bool:
    """Whether `FirestoreEmulator` can start here (``java`` on PATH and the jar found)."""
    jar = find_jar()
    return shutil.which("java") is not None and jar is not None and jar.is_file()


class FirestoreEmulator:
    """A Cloud Firestore emulator on a free local port, owned by this process.

    Use it as a context manager, or call `start` and `stop`. Point the Firestore SDK at it by
    setting ``FIRESTORE_EMULATOR_HOST`` to `host`.

    Attributes:
        jar: The emulator jar.
        port: The port it listens on (chosen when started, unless given).
        log_path: The file receiving the emulator's stdout and stderr.
    """

    def __init__(
        self,
        *,
        jar: str | os.PathLike[str] | None = None,
        java: str = "java",
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """Prepares (does not start) an emulator.

        Args:
            jar: The emulator jar; by default `find_jar`.
            java: The java executable.
            port: The port to listen on; by default a free one.
            startup_timeout: Seconds `start` waits for the emulator to answer.
            stop_timeout: Seconds `stop` waits after SIGTERM before SIGKILL.
        """
        found = pathlib.Path(jar) if jar is not None else find_jar()
        self.jar = found if found is not None else DEFAULT_JAR
        self.java = java
        self.port = port or 0
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: pathlib.Path | None = None
        self._finalizer: (
            weakref.finalize[[subprocess.Popen[bytes], float], FirestoreEmulator] | None
        ) = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIRESTORE_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> FirestoreEmulator:
        """Starts the JVM and waits until it accepts requests.

        Returns:
            The emulator itself.

        Raises:
            RuntimeError: java or the jar is missing, or the emulator exited or did not answer
                within ``startup_timeout`` seconds (the message quotes its output).
        """
        if self._process is not None:
            return self
        java = shutil.which(self.java)
        if java is None:
            raise RuntimeError(
                f"cannot start the Firestore emulator: {self.java!r} is not on PATH "
                "(install a Java 11+ runtime)"
            )
        if not self.jar.is_file():
            raise RuntimeError(
                f"cannot start the Firestore emulator: no jar at {self.jar}; install it with "
                "`gcloud components install cloud-firestore-emulator` (or the Debian package "
                f"google-cloud-cli-firestore-emulator), or set {JAR_ENV}"
            )
        if not self.port:
            self.port = _free_port()
        self._log_dir = tempfile.TemporaryDirectory(prefix="firestore-emulator-")
        self.log_path = pathlib.Path(self._log_dir.name) / "emulator.log"
        command = [
            java,
            "-Duser.language=en",
            "-cp",
            str(self.jar),
            _MAIN_CLASS,
            "start",
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        with self.log_path.open("wb") as log:
            # A new session keeps a Ctrl-C meant for the test runner from reaching the JVM
            # first; the runner's own teardown then stops it in order.
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._log_dir.name,
                start_new_session=True,
            )
        self._process = process
        # Stop the JVM even if the owner forgets to (or the interpreter exits first).
        self._finalizer = weakref.finalize(self, _terminate, process, self.stop_timeout)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the JVM (SIGTERM, then SIGKILL after ``stop_timeout``) and removes the log."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process, self.stop_timeout)
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None

    def reset(self, project: str, database: str = "(default)") -> None:
        """Deletes every document of one project's database.

        Raises:
            RuntimeError: The emulator refused or is not running.
        """
        path = (
            f"/emulator/v1/projects/{urllib.parse.quote(project, safe='')}"
            f"/databases/{urllib.parse.quote(database, safe='()')}/documents"
        )
        request = urllib.request.Request(f"http://{self.host}{path}", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as error:
            raise RuntimeError(
                f"cannot reset the Firestore emulator at {self.host}: {error}"
            ) from error

    def log(self) -> str:
        """The emulator's output so far (its last few thousand characters)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[-_LOG_TAIL_CHARS:]

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(
                    f"the Firestore emulator exited with code {code} while starting "
                    f"(command: java -cp {self.jar} ...); its output:\n{self.log()}"
                )
            # The root URL answers "Ok" once the server (HTTP and gRPC share the port) is up.
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Firestore emulator did not answer on {self.host} within "
                    f"{self.startup_timeout:.0f} s; its output:\n{self.log()}"
                )
            time.sleep(0.05)


def _free_port() -> int:
    # The port could be taken between closing this socket and the JVM binding it; the JVM then
    # exits with a bind error, which `start` reports with its output.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
