"""Every exception llm-scheduler raises on purpose.

User errors (the input is wrong; the message says how to fix it) are kept apart from runtime
errors (something failed while running a correct config)::

    LlmSchedulerError
    ├── UserError                    the user must change something; CLIs exit with code 2
    │   ├── ConfigError              one or more problems in a config file, each with its field path
    │   ├── MissingApiKeyError       providers need keys that are not set (all listed at once)
    │   ├── MissingCredentialsError  a cloud store needs credentials that are not set up
    │   └── MissingDependencyError   an optional SDK is not installed
    └── RunError                     a correct config failed while running; CLIs exit with code 1
        ├── ProviderError            a model provider failed (after retries, when retryable)
        ├── BudgetExceededError      a call was refused: it could take the run over its budget
        ├── FunctionCallError        a registered function raised or returned a bad value
        ├── InterpolationError       a `%var%` had no value at run time
        └── StoreError               the store failed or refused a write
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BudgetExceededError",
    "ConfigError",
    "ConfigProblem",
    "FunctionCallError",
    "InterpolationError",
    "LlmSchedulerError",
    "MissingApiKey",
    "MissingApiKeyError",
    "MissingCredentialsError",
    "MissingDependencyError",
    "ProviderError",
    "RunError",
    "StoreError",
    "UserError",
]


class LlmSchedulerError(Exception):
    """Base class of every error llm-scheduler raises on purpose."""


class UserError(LlmSchedulerError):
    """The input is wrong; the message says what to change."""


class RunError(LlmSchedulerError):
    """A valid config failed while it ran."""


@dataclasses.dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a config.

    Attributes:
        path: The field path inside the config, e.g. ``tasks[1].steps[0].model_query_config``.
        message: What is wrong.
        hint: How to fix it.
        file: The config file, when the config came from one.
    """

    path: str
    message: str
    hint: str = ""
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = self.path or "<config>"
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{field}: {self.message}{hint}"


class ConfigError(UserError):
    """A config has one or more problems; all of them are reported at once."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = list(problems)
        count = len(self.problems)
        header = "1 problem" if count == 1 else f"{count:,} problems"
        super().__init__(f"invalid config, {header}:\n{_problem_lines(self.problems)}")

    @classmethod
    def single(cls, path: str, message: str, hint: str = "", file: str = "") -> ConfigError:
        """Builds an error with one problem."""
        return cls([ConfigProblem(path=path, message=message, hint=hint, file=file)])


# The message lists this many problems at most (`ConfigError.problems` holds them all).
_MAX_LISTED_PROBLEMS = 50
# A problem repeated at many places lists this many of the other places.
_MAX_LISTED_PLACES = 3


def _problem_lines(problems: list[ConfigProblem]) -> str:
    """One line per problem; the same problem at several places is one line naming them.

    A generated job with one wrong value in a repeated step reports it at every place (10,000
    lines of one message and hint): the message says it once, with the first places and how
    many more.
    """
    places: dict[tuple[str, str, str], list[ConfigProblem]] = {}
    for problem in problems:
        places.setdefault((problem.file, problem.message, problem.hint), []).append(problem)
    lines: list[str] = []
    for same in list(places.values())[:_MAX_LISTED_PROBLEMS]:
        first = same[0]
        if len(same) == 1:
            lines.append(f"  - {first}")
            continue
        others = ", ".join(p.path or "<config>" for p in same[1 : 1 + _MAX_LISTED_PLACES])
        more = len(same) - 1 - _MAX_LISTED_PLACES
        others += f" and {more:,} more" if more > 0 else ""
        where = f"{first.file}: " if first.file else ""
        hint = f" (hint: {first.hint})" if first.hint else ""
        lines.append(
            f"  - {where}{first.path or '<config>'} (also at {others}): {first.message}{hint}"
        )
    if len(places) > _MAX_LISTED_PROBLEMS:
        rest = sum(len(same) for same in list(places.values())[_MAX_LISTED_PROBLEMS:])
        lines.append(f"  - ... and {rest:,} more (ConfigError.problems lists every one)")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class MissingApiKey:
    """An API key that is not set, and the model keys that need it.

    Attributes:
        env_var: The environment variable the key is read from.
        provider: The provider the key is for.
        model_keys: The model keys that need it, sorted.
        alternatives: Other environment variables that are read when ``env_var`` is not set.
    """

    env_var: str
    provider: str
    model_keys: tuple[str, ...]
    alternatives: tuple[str, ...] = ()

    def __str__(self) -> str:
        also = "".join(f" (or {name})" for name in self.alternatives)
        keys = ", ".join(self.model_keys)
        noun = "model key" if len(self.model_keys) == 1 else "model keys"
        return f"{self.env_var}{also} for provider {self.provider!r}, needed by {noun} {keys}"


class MissingApiKeyError(UserError):
    """Providers need API keys that are not set; all of them are reported at once."""

    def __init__(self, missing: list[MissingApiKey]) -> None:
        if not missing:
            raise ValueError("MissingApiKeyError needs at least one missing key")
        self.missing = list(missing)
        count = len(self.missing)
        header = "1 API key is not set" if count == 1 else f"{count} API keys are not set"
        lines = "\n".join(f"  - {key}" for key in self.missing)
        them = "it" if count == 1 else "them"
        super().__init__(
            f"{header}:\n{lines}\nset {them} in the environment "
            f"(e.g. export {self.missing[0].env_var}=...), or run with --offline "
            "(or LLM_SCHEDULER_OFFLINE=1) to use the offline model"
        )


class MissingCredentialsError(UserError):
    """A cloud service (the Firestore store) needs credentials that are not set up.

    The message names the service and how to set them up.
    """


class MissingDependencyError(UserError):
    """An optional SDK is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the {package!r} package: pip install 'llm-scheduler[{extra}]'"
        )


class ProviderError(RunError):
    """A model provider failed.

    Attributes:
        provider: The provider name (``openai``, ``google``, ``anthropic``, ``offline``).
        model: The provider's model name the request was for; empty when not known.
        retryable: Whether the failure is transient (429, 5xx, timeout, connection error,
            malformed reply).
        status: The HTTP status, when there was one.
        retry_after: Seconds the provider asked to wait before retrying, when it said.
        attempts: Requests made before giving up (set by the retry loop).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1
        super().__init__(message)


class BudgetExceededError(RunError):
    """A model or embedding call was refused, unmade: it could take the run over its budget.

    The message names the budget, what the run has spent and reserved, the call's estimated
    cost and how it was estimated, and how to go on (see docs/costs.md).
    """


class FunctionCallError(RunError):
    """A registered function raised, or returned a value that is not JSON."""


class InterpolationError(RunError):
    """A template named a variable that has no value at run time."""


class StoreError(RunError):
    """The store failed, or refused a write (e.g. a document over Firestore's size limit)."""
