"""Flags shared by the command-line tools, defined once so the tools can share a process."""

from __future__ import annotations

from absl import flags

from llm_scheduler.config.kinds import CONFIG_TYPES

__all__ = [
    "BUDGET_USD",
    "CACHE",
    "CONFIG_TYPE",
    "FUNCTION_MODULES",
    "INPUT_PATH",
    "JOB_ID",
    "JSON",
    "MAX_CONCURRENCY",
    "MODELS_FILE",
    "OFFLINE",
    "OUTPUT_FORMAT",
    "PRINT_RECORD",
    "QUIET",
    "RUN_ID",
    "STORE",
    "VARS",
]

INPUT_PATH = flags.DEFINE_string(
    "input_path", None, "The config file to read (JSON, textproto or binary)."
)
CONFIG_TYPE = flags.DEFINE_enum(
    "config_type", None, list(CONFIG_TYPES), "What the file holds; guessed when not given."
)
OFFLINE = flags.DEFINE_bool(
    "offline",
    False,
    "Answer every model key with the offline model (no network, no API keys). "
    "LLM_SCHEDULER_OFFLINE=1 does the same.",
)
MODELS_FILE = flags.DEFINE_string(
    "models_file",
    None,
    "A models file (ModelsConfig) that extends or overrides the built-in model keys; "
    "default: $LLM_SCHEDULER_MODELS_FILE.",
)
FUNCTION_MODULES = flags.DEFINE_list(
    "function_modules",
    [],
    "Python modules to import first: their @register_function functions can be called by steps, "
    "and the model providers they register with register_provider serve model keys.",
)
VARS = flags.DEFINE_multi_string(
    "var",
    [],
    "An input variable as name=value (value parsed as JSON when it is JSON)",
)
MAX_CONCURRENCY = flags.DEFINE_integer(
    "max_concurrency", 8, "How many tasks may run at once.", lower_bound=1
)
PRINT_RECORD = flags.DEFINE_bool(
    "print_record",
    False,
    "Print the full run record (prompts, responses, usage) instead of only the outputs.",
)
QUIET = flags.DEFINE_bool(
    "quiet",
    False,
    "Print only failures and retries on stderr: no progress, no summary, no library logs.",
)
OUTPUT_FORMAT = flags.DEFINE_enum(
    "output_format", "json", ["json", "textproto", "binary"], "The format to print or write."
)
STORE = flags.DEFINE_string(
    "store",
    None,
    "The store URL: sqlite:///path/state.db (default: $LLM_SCHEDULER_STORE or "
    "sqlite:///.llm_scheduler/state.db) or firestore://PROJECT.",
)
RUN_ID = flags.DEFINE_string("run_id", None, "A job run id in the store.")
# Shared: config_reader and schedule both read it, and the tools may share a process.
JOB_ID = flags.DEFINE_string(
    "job_id",
    "",
    "A job id: with config_reader --list_runs and cost_report, only runs of this job; with "
    "schedule add, the job saved at jobs/{job_id} to run.",
)
CACHE = flags.DEFINE_enum(
    "cache",
    "use",
    ["use", "refresh", "off"],
    "The response cache policy of steps whose `cache` is DEFAULT: use (answer repeated requests "
    "from the cache in --store), refresh (call the model and replace the cached answer) or off. "
    "step_runner, task_runner and job_runner use it by default (not under --offline unless given); "
    "job_submitter only when given.",
)
# Shared: job_runner and job_submitter both read it.
BUDGET_USD = flags.DEFINE_float(
    "budget_usd",
    None,
    "A budget in US dollars for the run: a model or embedding call estimated to take the run's "
    "cost over it is refused before it is made, and the run fails saying so (see docs/costs.md). "
    "With job_runner --resume: the resumed run's new budget (what it spent stays spent).",
)
# Shared: config_reader --compare and cost_report both read it.
JSON = flags.DEFINE_bool(
    "json", False, "Print JSON instead of a table (config_reader --compare, cost_report)."
)
