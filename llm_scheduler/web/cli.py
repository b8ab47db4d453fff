"""Serves the web UI: browse runs and jobs, edit and validate job configs, start runs.

Usage:
    web_ui [--store=URL] [--host=127.0.0.1] [--port=8765] [--token=T] [--configs_dir=DIR]
           [--nodispatch] [--offline] [--models_file=PATH] [--function_modules=M,...]

Binds 127.0.0.1 by default. Any other address needs an access token (--token or
$LLM_SCHEDULER_WEB_TOKEN): every request must then carry it, and the printed URL sets it as a
cookie once. By default a dispatcher runs in the server, so runs started from the UI execute;
with --nodispatch, run a separate ``dispatcher`` on the same store.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

from absl import flags as absl_flags

from llm_scheduler.errors import UserError
from llm_scheduler.runner import common, flags

if TYPE_CHECKING:
    from llm_scheduler.web.app import WebSettings

__all__ = ["TOKEN_ENV", "is_loopback", "main", "run", "settings_from_flags"]

TOKEN_ENV = "LLM_SCHEDULER_WEB_TOKEN"

HOST = absl_flags.DEFINE_string(
    "host", "127.0.0.1", "The address to listen on; other than loopback needs --token."
)
PORT = absl_flags.DEFINE_integer("port", 8765, "The port to listen on.", lower_bound=0)
TOKEN = absl_flags.DEFINE_string(
    "token", None, f"The access token every request must carry; default: ${TOKEN_ENV}."
)
CONFIGS_DIR = absl_flags.DEFINE_string(
    "configs_dir",
    None,
    "A folder of job configs the jobs page lists and the editor opens; default: examples "
    "when it exists.",
)
DISPATCH = absl_flags.DEFINE_bool(
    "dispatch", True, "Run a dispatcher in the server so runs started here execute."
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from_flags() -> tuple[WebSettings, str]:
    """The app's settings from the flags, and the URL to print.

    Raises:
        UserError: A non-loopback host without a token, or a bad folder or models file.
    """
    from llm_scheduler.web.app import WebSettings

    token = TOKEN.value or os.environ.get(TOKEN_ENV) or None
    host = HOST.value
    if not is_loopback(host) and not token:
        raise UserError(
            f"--host={host} would let other machines reach the web UI: pass --token=SECRET "
            f"(or set {TOKEN_ENV}), or keep the default --host=127.0.0.1"
        )
    configs_dir = CONFIGS_DIR.value
    if configs_dir is None:
        configs_dir = "examples" if os.path.isdir("examples") else ""
    elif configs_dir and not os.path.isdir(configs_dir):
        raise UserError(f"--configs_dir: no such folder: {configs_dir}")
    models_path = flags.MODELS_FILE.value or os.environ.get(common.MODELS_FILE_ENV) or None
    if models_path:
        common.check_input_file(models_path, "--models_file")
    settings = WebSettings(
        store_url=flags.STORE.value or "",
        configs_dir=configs_dir,
        models_path=models_path,
        token=token,
        dispatch=DISPATCH.value,
        offline=flags.OFFLINE.value,
        function_modules=tuple(flags.FUNCTION_MODULES.value),
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{PORT.value}/"
    if token:
        url += "?token=" + token
    return settings, url


def _serve() -> int:
    # First: without the web extra, this raises the error that names the install command.
    from llm_scheduler.web.app import create_app

    settings, url = settings_from_flags()
    app = create_app(settings)
    import uvicorn

    # The URL on stdout, flushed, so a script (or a test) can wait for it.
    print(f"web UI: {url}", flush=True)
    common.report(f"store: {app.state.web.store.url}")
    # Open live pages keep event streams open: on Ctrl-C they get 2 s to end, not forever.
    uvicorn.run(
        app,
        host=HOST.value,
        port=PORT.value,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return common.EXIT_OK


main = common.main_for(_serve)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()
