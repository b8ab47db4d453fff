"""The web application: settings, shared state, page rendering and the routers.

`create_app` builds a FastAPI app over one store. Each route module (``routes_jobs``,
``routes_runs``, ``routes_what_if``) exposes an ``APIRouter`` named ``router``. Views build one
JSON-able dict and `respond` renders it as HTML, or returns it as JSON when the path ends with
``.json`` (the page's JSON twin).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from llm_scheduler.errors import ConfigError, MissingDependencyError, RunError, UserError

try:
    import jinja2
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        error.name or "fastapi", "web", "The web UI (llm_scheduler.web)"
    ) from error

from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.client import ModelClient, offline_from_env
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store import Store, default_store_url, open_store
from llm_scheduler.web.security import SecurityMiddleware

__all__ = [
    "ROUTE_MODULES",
    "StateDep",
    "WebSettings",
    "WebState",
    "create_app",
    "get_state",
    "pretty_json",
    "respond",
    "status_class",
    "wants_json",
]

T = TypeVar("T")

_HERE = pathlib.Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"

# The route modules, included when present (each is written by a different hand).
ROUTE_MODULES = ("routes_jobs", "routes_runs", "routes_schedules", "routes_what_if")


def _default_configs_dir() -> str:
    return "examples" if os.path.isdir("examples") else ""


@dataclasses.dataclass(frozen=True)
class WebSettings:
    """How the web UI is set up.

    Attributes:
        store_url: The store (``sqlite:///path`` or ``firestore://PROJECT``); the default store
            of the other tools when empty.
        configs_dir: A folder of job config files the jobs page lists and the editor opens;
            ``examples`` when it exists. Empty for none.
        models_path: A models file (ModelsConfig) extending the built-in model keys, or None.
        token: The access token every request must carry, or None (loopback only).
        dispatch: Run a dispatcher in the server process, so runs started here execute without
            a separate ``dispatcher``.
        offline: Runs started from the UI (and the in-process dispatcher) use the offline model.
        function_modules: Modules to import first, so their ``@register_function`` functions
            can be called by steps and their ``register_provider`` providers serve model keys
            (as ``--function_modules``).
    """

    store_url: str = ""
    configs_dir: str = dataclasses.field(default_factory=_default_configs_dir)
    models_path: str | None = None
    token: str | None = None
    dispatch: bool = False
    offline: bool = False
    function_modules: tuple[str, ...] = ()


@dataclasses.dataclass
class WebState:
    """What every request shares: settings, the open store, the model registry, templates.

    Attributes:
        settings: The app's settings.
        store: The store, opened once for the app.
        registry: The model keys (built in, plus the models file).
        functions: The functions steps may call.
        templates: The Jinja environment (autoescape on).
    """

    settings: WebSettings
    store: Store
    registry: ModelRegistry
    functions: FunctionRegistry
    templates: jinja2.Environment

    async def call(self, function: Callable[..., T], /, *args: Any) -> T:
        """Calls a blocking library function that uses the store, off the event loop."""
        return await self.store.call(function, *args)


def get_state(request: Request) -> WebState:
    """The app's `WebState`, for a route's ``Depends``."""
    state: WebState = request.app.state.web
    return state


# A route parameter ``state: StateDep`` receives the app's `WebState`.
StateDep = Annotated[WebState, Depends(get_state)]


def wants_json(request: Request) -> bool:
    """Whether the request is for a page's JSON twin (its path ends with ``.json``)."""
    return request.url.path.endswith(".json")


def respond(
    request: Request, template: str, data: dict[str, Any], *, status_code: int = 200
) -> Response:
    """Renders a view's data as its page, or as JSON for the page's JSON twin.

    Args:
        request: The request; a path ending with ``.json`` gets JSON.
        template: The page template; it sees the data as ``data`` (and ``request``).
        data: The view's JSON-able data.
        status_code: The response status.
    """
    if wants_json(request):
        return JSONResponse(data, status_code=status_code)
    state = get_state(request)
    html = state.templates.get_template(template).render(request=request, data=data)
    return HTMLResponse(html, status_code=status_code)


_STATUS_PREFIX = "RUN_STATUS_"


def status_class(status: object) -> str:
    """The CSS class of a run status, e.g. ``status-succeeded``.

    Takes a stored status (``RUN_STATUS_SUCCEEDED``) or a plain name (``succeeded``); unknown or
    empty statuses get ``status-pending``.
    """
    name = str(status or "").strip().upper().removeprefix(_STATUS_PREFIX)
    if name in ("", "UNSPECIFIED"):
        name = "PENDING"
    return f"status-{name.lower()}"


def pretty_json(value: object) -> str:
    """A JSON value as indented text for a ``<pre>`` (autoescape escapes it like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["status_class"] = status_class
    env.filters["pretty_json"] = pretty_json
    return env


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """The web application over the store the settings name.

    The store is opened here and closed when the app shuts down. With ``settings.dispatch`` a
    dispatcher runs in the server's event loop while the app is up.

    Raises:
        UserError: The store URL, the models file or a function module is wrong.
    """
    settings = settings or WebSettings()
    functions = default_registry()
    # First: the modules may register model providers that the models file names.
    functions.load_modules(settings.function_modules)
    registry = ModelRegistry.with_models_file(settings.models_path)
    store = open_store(settings.store_url or default_store_url())
    state = WebState(
        settings=settings,
        store=store,
        registry=registry,
        functions=functions,
        templates=_templates(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if settings.dispatch:
                async with _dispatching(state):
                    yield
            else:
                yield
        finally:
            store.close()

    app = FastAPI(
        title="llm-scheduler",
        summary="Jobs, runs and their records; every page has a JSON twin (path + .json).",
        docs_url=None,  # Swagger UI needs inline and remote scripts; /docs is our own page
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = state
    app.add_middleware(SecurityMiddleware, token=settings.token)
    # follow_symlink: under Bazel, runfiles are symlinks to the sources.
    app.mount("/static", StaticFiles(directory=STATIC_DIR, follow_symlink=True), name="static")
    _add_error_handlers(app)
    _add_api_docs(app)
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(f"llm_scheduler.web.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"llm_scheduler.web.{name}":
                raise
            continue
        app.include_router(module.router)
    return app


@contextlib.asynccontextmanager
async def _dispatching(state: WebState) -> AsyncIterator[None]:
    """Runs a dispatcher on the app's store until the app shuts down."""
    from llm_scheduler.engine.context import RunContext
    from llm_scheduler.execution.dispatcher import Dispatcher

    offline = state.settings.offline or offline_from_env()
    context = RunContext(
        models=ModelClient(state.registry, offline=offline), functions=state.functions
    )
    dispatcher = Dispatcher(state.store, context)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop=stop))
    try:
        yield
    finally:
        stop.set()
        state.store.interrupt_wait()
        await task
        await context.models.aclose()


def _error_response(
    request: Request, status_code: int, message: str, extra: dict[str, Any] | None = None
) -> Response:
    """An error as JSON (``{"error": ...}``) for the API and JSON twins, else as a page."""
    data = {"error": message, **(extra or {})}
    if wants_json(request) or request.url.path.startswith("/api/") or request.method != "GET":
        return JSONResponse(data, status_code=status_code)
    return respond(request, "error.html", {**data, "status": status_code}, status_code=status_code)


def _add_error_handlers(app: FastAPI) -> None:
    async def config_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ConfigError)
        problems = [dataclasses.asdict(problem) for problem in error.problems]
        return _error_response(request, 422, str(error), {"problems": problems})

    async def user_error(request: Request, error: Exception) -> Response:
        return _error_response(request, 400, str(error))

    async def run_error(request: Request, error: Exception) -> Response:
        return _error_response(request, 500, str(error))

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code < 400:  # pragma: no cover - redirects are not raised here
            return Response(status_code=error.status_code, headers=error.headers)
        return _error_response(request, error.status_code, str(error.detail))

    app.add_exception_handler(ConfigError, config_error)
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(RunError, run_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _add_api_docs(app: FastAPI) -> None:
    """``/docs``: the API's operations from the OpenAPI schema, as a page without scripts."""

    @app.get("/docs", include_in_schema=False)
    @app.get("/docs.json", include_in_schema=False)
    async def api_docs(request: Request) -> Response:
        operations = [
            {
                "method": method.upper(),
                "path": path,
                "summary": operation.get("summary", ""),
                "description": operation.get("description", ""),
            }
            for path, item in app.openapi().get("paths", {}).items()
            for method, operation in item.items()
        ]
        return respond(request, "api_docs.html", {"operations": operations})
