"""The sample configs `create_sample` writes; the step sample is the seed's, verbatim."""

from __future__ import annotations

from llm_scheduler.config import formats
from llm_scheduler.config.structs import to_struct, to_value
from llm_scheduler.v1 import config_pb2

__all__ = [
    "SAMPLE_FILES",
    "SEED_STEP_JSON",
    "SUB_JOB_CHILD_FILE",
    "sample_files",
    "sample_map_job",
    "sample_strategy_job",
    "sample_sub_job",
    "sample_sub_job_child",
]

# Copied verbatim from the seed document (comment included): it must load and run as it is.
SEED_STEP_JSON = """\
{
    "id": "1",
    "name": "sample",
    "description": "A sample StepConfig",
    "step_type": 0,
    "input_config": {
        "payload": {
            "user_prompt": "Tell me a joke!",
            "system_prompt": "You're a funny assistant."
        }
    },
    "model_query_config": {
        "model_key": "GEMINI_FLASH",
        "parameters": {
            "temperature": "0.7"
        },
        "system_prompt": "You are a helpful assistant.",
        "user_prompt": "%user_prompt%" // Interpolate input variables into model query
    },
    "output_config": {
        "payload": {
            "user_prompt": "Hahaha"
        }
    },
    "metadata": {
        "timestamp": 1741667405,
        "source": "create_sample",
        "version": "1.0"
    }
}
"""

_METADATA = config_pb2.Metadata(timestamp=1741667405, source="create_sample", version="1.0")


def _data(**values: object) -> config_pb2.DataConfig:
    return config_pb2.DataConfig(payload=to_struct(values))


def _query(
    step_id: str, name: str, user_prompt: str, outputs: dict[str, object], system_prompt: str = ""
) -> config_pb2.StepConfig:
    return config_pb2.StepConfig(
        id=step_id,
        name=name,
        step_type=config_pb2.STEP_TYPE_MODEL_QUERY,
        model_query_config=config_pb2.ModelQueryConfig(
            model_key="GEMINI_FLASH",
            parameters=to_struct({"temperature": "0.7"}),
            system_prompt=system_prompt or "You are a helpful assistant.",
            user_prompt=user_prompt,
        ),
        output_config=_data(**outputs),
        metadata=_METADATA,
    )


def sample_task() -> config_pb2.TaskConfig:
    """Two steps: the first one's output feeds the second one's prompt."""
    return config_pb2.TaskConfig(
        task_id="joke",
        name="Tell and explain a joke",
        input_config=_data(topic="computers"),
        steps=[
            _query("1", "tell", "Tell me a short joke about %topic%.", {"joke": ""}),
            _query(
                "2",
                "explain",
                "Explain in one sentence why this is funny: %joke%",
                {"explanation": ""},
            ),
        ],
        metadata=_METADATA,
    )


def sample_job() -> config_pb2.JobConfig:
    """A chain of three tasks, ending with a function-call step."""
    draft = config_pb2.TaskConfig(
        task_id="draft",
        steps=[_query("1", "draft", "Write a four-line poem about %topic%.", {"draft": ""})],
        next_task="review",
        metadata=_METADATA,
    )
    review = config_pb2.TaskConfig(
        task_id="review",
        steps=[
            _query(
                "1",
                "critique",
                "Give two concrete improvements for this poem:\n%draft%",
                {"critique": ""},
            ),
        ],
        # A task receives its direct predecessors' outputs; pass the draft on to "revise".
        output_config=_data(critique="", draft=""),
        next_task="revise",
        metadata=_METADATA,
    )
    revise = config_pb2.TaskConfig(
        task_id="revise",
        steps=[
            _query(
                "1",
                "revise",
                "Rewrite the poem applying the critique.\nPoem:\n%draft%\nCritique:\n%critique%",
                {"poem": ""},
            ),
            config_pb2.StepConfig(
                id="2",
                name="count_lines",
                step_type=config_pb2.STEP_TYPE_FUNCTION_CALL,
                function_call_config=config_pb2.FunctionCallConfig(
                    function_name="regex_extract",
                    request=to_value({"text": "%poem%", "pattern": "[^\\n]+", "all": True}),
                ),
                output_config=_data(lines="%response%"),
                metadata=_METADATA,
            ),
        ],
        output_config=_data(poem="", lines=""),
        metadata=_METADATA,
    )
    return config_pb2.JobConfig(
        job_id="poem",
        name="Draft, review and revise a poem",
        description="A chain of three tasks; each one's outputs feed the next one's prompts.",
        tasks=[draft, review, revise],
        input_config=_data(topic="the sea"),
        metadata=_METADATA,
    )


def sample_fanout_job() -> config_pb2.JobConfig:
    """One task fans out to two parallel tasks that a third one joins."""
    outline = config_pb2.TaskConfig(
        task_id="outline",
        steps=[
            _query("1", "outline", "Describe in two sentences the idea: %idea%", {"summary": ""})
        ],
        next_tasks=["pros", "cons"],
        metadata=_METADATA,
    )
    pros = config_pb2.TaskConfig(
        task_id="pros",
        steps=[_query("1", "pros", "List three strengths of this idea:\n%summary%", {"pros": ""})],
        next_task="verdict",
        metadata=_METADATA,
    )
    cons = config_pb2.TaskConfig(
        task_id="cons",
        steps=[_query("1", "cons", "List three weaknesses of this idea:\n%summary%", {"cons": ""})],
        next_task="verdict",
        metadata=_METADATA,
    )
    verdict = config_pb2.TaskConfig(
        task_id="verdict",
        steps=[
            _query(
                "1",
                "verdict",
                "Strengths:\n%pros%\nWeaknesses:\n%cons%\nShould we do it? Answer in one "
                "paragraph.",
                {"verdict": ""},
            )
        ],
        metadata=_METADATA,
    )
    return config_pb2.JobConfig(
        job_id="idea_review",
        name="Review an idea from two sides",
        description="Fan-out to two parallel tasks and a join that sees both outputs.",
        tasks=[outline, pros, cons, verdict],
        input_config=_data(idea="a library of reusable LLM workflows"),
        metadata=_METADATA,
    )


def sample_embedding_job() -> config_pb2.JobConfig:
    """A summary of a note, then an embedding of the summary (text in, vector out)."""
    note = config_pb2.TaskConfig(
        task_id="note",
        steps=[
            _query(
                "1", "summarize", "Summarize this note in one sentence:\n%note%", {"summary": ""}
            ),
            config_pb2.StepConfig(
                id="2",
                name="embed",
                step_type=config_pb2.STEP_TYPE_EMBEDDING,
                embedding_config=config_pb2.EmbeddingConfig(
                    model_key="GEMINI_EMBEDDING", input="%summary%", dimensions=256
                ),
                output_config=_data(vector="%response%"),
                metadata=_METADATA,
            ),
        ],
        output_config=_data(summary="", vector=""),
        metadata=_METADATA,
    )
    return config_pb2.JobConfig(
        job_id="note_embedding",
        name="Summarize a note and embed the summary",
        description="A model query, then an embedding step: its response is the vector.",
        tasks=[note],
        input_config=_data(note="Tides are caused mostly by the Moon's gravity."),
        metadata=_METADATA,
    )


def _plan_step() -> config_pb2.StepConfig:
    """A model lists three section titles (a JSON schema the offline model answers too)."""
    plan = _query(
        "1",
        "plan",
        "List three section titles for a short article about %topic%.",
        {"sections": "%response.sections%"},
    )
    plan.model_query_config.response_format.CopyFrom(
        config_pb2.ResponseFormat(
            type=config_pb2.ResponseFormat.TYPE_JSON_SCHEMA,
            json_schema=to_struct(
                {
                    "type": "object",
                    "properties": {
                        "sections": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 3,
                            "maxItems": 3,
                        }
                    },
                    "required": ["sections"],
                }
            ),
            schema_name="outline",
        )
    )
    return plan


def sample_map_job() -> config_pb2.JobConfig:
    """A model plans a list of sections, a map writes each one, a join assembles them in order."""
    plan = _plan_step()
    outline = config_pb2.TaskConfig(
        task_id="outline", steps=[plan], next_task="write", metadata=_METADATA
    )
    write = config_pb2.TaskConfig(
        task_id="write",
        name="Write each section",
        # Runs once per item of the outline's list, at most two at once; its output
        # "paragraph" is, for "assemble", the list of every item's paragraph in item order.
        for_each=config_pb2.MapConfig(items="%sections%", item_variable="section", max_in_flight=2),
        steps=[
            _query(
                "1",
                "write",
                "Write one short paragraph for section %index% of an article about %topic%. "
                "Section title: %section%",
                {"paragraph": ""},
            )
        ],
        next_task="assemble",
        metadata=_METADATA,
    )
    assemble = _assemble_task()
    return config_pb2.JobConfig(
        job_id="article_sections",
        name="Write an article section by section",
        description="A model lists the sections; a map task writes each one; a join assembles "
        "them in order.",
        tasks=[outline, write, assemble],
        input_config=_data(topic="tide pools"),
        metadata=_METADATA,
    )


def _axis(name: str, variable: str, values: dict[str, object]) -> config_pb2.StrategyAxis:
    axis = config_pb2.StrategyAxis(name=name, variable=variable)
    for value_name, value in values.items():
        entry = axis.values.add(name=value_name)
        if value is not None:
            entry.value.CopyFrom(to_value(value))
    return axis


def sample_strategy_job() -> config_pb2.JobConfig:
    """A strategy rewrites a note with 3 models x 2 instructions; a task compares the 6 drafts."""
    rewrite = config_pb2.TaskConfig(
        task_id="rewrite",
        name="Rewrite the note",
        # Runs once per variation, e.g. rewrite[model=GPT_4O_MINI,prompt=concise]; its output
        # "draft" is, for "compare", an object keyed by variation name.
        strategy=config_pb2.StrategyConfig(
            axes=[
                _axis(
                    "model",
                    "model_key",
                    {"GEMINI_FLASH": None, "GPT_4O_MINI": None, "CLAUDE_HAIKU_4_5": None},
                ),
                _axis(
                    "prompt",
                    "instruction",
                    {
                        "concise": "Rewrite this note in one clear sentence",
                        "friendly": "Rewrite this note in a warm, friendly tone",
                    },
                ),
            ]
        ),
        steps=[_query("1", "rewrite", "%instruction%:\n%note%", {"draft": ""})],
        next_task="compare",
        metadata=_METADATA,
    )
    compare = config_pb2.TaskConfig(
        task_id="compare",
        steps=[
            _query(
                "1",
                "compare",
                "Here are rewrites of one note, keyed by how each was made:\n%draft%\n"
                "Name the best one and say why in two sentences.",
                {"verdict": ""},
            )
        ],
        metadata=_METADATA,
    )
    return config_pb2.JobConfig(
        job_id="note_rewrites",
        name="Rewrite a note six ways",
        description="A strategy runs one rewrite per model and instruction; a task compares "
        "them (config_reader --run_id=ID --compare=rewrite prints them side by side).",
        tasks=[rewrite, compare],
        input_config=_data(note="meeting moved to thursday 3pm, bring the q3 numbers, room 4b"),
        metadata=_METADATA,
    )


def _assemble_task() -> config_pb2.TaskConfig:
    """The join of the map samples: the paragraphs, in item order, into one article."""
    return config_pb2.TaskConfig(
        task_id="assemble",
        steps=[
            _query(
                "1",
                "assemble",
                "Join these paragraphs, in this order, into one article about %topic%:\n"
                "%paragraph%",
                {"article": ""},
            )
        ],
        metadata=_METADATA,
    )


SUB_JOB_CHILD_FILE = "sample_sub_job_child_config.json"


def sample_sub_job_child() -> config_pb2.JobConfig:
    """The child of the sub-job sample: draft a section, then polish the draft."""
    draft = config_pb2.TaskConfig(
        task_id="draft",
        steps=[
            _query(
                "1",
                "draft",
                "Draft one paragraph for the section %section% of an article about %topic%.",
                {"draft": ""},
            )
        ],
        next_task="polish",
        metadata=_METADATA,
    )
    polish = config_pb2.TaskConfig(
        task_id="polish",
        steps=[
            _query(
                "1",
                "polish",
                "Polish this paragraph; keep its meaning and length:\n%draft%",
                {"paragraph": ""},
            )
        ],
        metadata=_METADATA,
    )
    return config_pb2.JobConfig(
        job_id="section_writer",
        name="Draft and polish one section",
        description="The child job of sample_sub_job_config.json, run once per section.",
        tasks=[draft, polish],
        input_config=_data(section="", topic=""),
        metadata=_METADATA,
    )


def sample_sub_job() -> config_pb2.JobConfig:
    """A model plans sections; a map runs the child job (draft -> polish) per section; a join.

    The map's step is a sub-job step on `SUB_JOB_CHILD_FILE` (a path relative to this config's
    file, so both files go in the same folder).
    """
    outline = config_pb2.TaskConfig(
        task_id="outline", steps=[_plan_step()], next_task="write", metadata=_METADATA
    )
    write = config_pb2.TaskConfig(
        task_id="write",
        name="Write each section with the child job",
        for_each=config_pb2.MapConfig(items="%sections%", item_variable="section", max_in_flight=2),
        steps=[
            config_pb2.StepConfig(
                id="1",
                name="write_section",
                step_type=config_pb2.STEP_TYPE_SUB_JOB,
                # Child input name <- template over this step's variables; the child's outputs
                # are its response, keyed by its final task: {"polish": {"paragraph": ...}}.
                sub_job_config=config_pb2.SubJobConfig(
                    job_path=SUB_JOB_CHILD_FILE,
                    inputs={"section": "%section%", "topic": "%topic%"},
                ),
                output_config=_data(paragraph="%response.polish.paragraph%"),
                metadata=_METADATA,
            )
        ],
        next_task="assemble",
        metadata=_METADATA,
    )
    assemble = _assemble_task()
    return config_pb2.JobConfig(
        job_id="article_by_sub_jobs",
        name="Write an article with a sub-job per section",
        description="A model lists the sections; a map runs a child job (draft, then polish) "
        "for each one; a join assembles them in order.",
        tasks=[outline, write, assemble],
        input_config=_data(topic="tide pools"),
        metadata=_METADATA,
    )


def sample_files() -> dict[str, bytes]:
    """File name to content for every sample `create_sample` writes."""
    json_format = formats.ConfigFormat.JSON
    return {
        "sample_step_config.json": SEED_STEP_JSON.encode("utf-8"),
        "sample_task_config.json": formats.dumps(sample_task(), json_format),
        "sample_job_config.json": formats.dumps(sample_job(), json_format),
        "sample_fanout_job_config.json": formats.dumps(sample_fanout_job(), json_format),
        "sample_embedding_job_config.json": formats.dumps(sample_embedding_job(), json_format),
        "sample_map_job_config.json": formats.dumps(sample_map_job(), json_format),
        "sample_sub_job_config.json": formats.dumps(sample_sub_job(), json_format),
        "sample_strategy_job_config.json": formats.dumps(sample_strategy_job(), json_format),
        SUB_JOB_CHILD_FILE: formats.dumps(sample_sub_job_child(), json_format),
    }


SAMPLE_FILES = (
    "sample_step_config.json",
    "sample_task_config.json",
    "sample_job_config.json",
    "sample_fanout_job_config.json",
    "sample_embedding_job_config.json",
    "sample_map_job_config.json",
    "sample_sub_job_config.json",
    "sample_strategy_job_config.json",
    SUB_JOB_CHILD_FILE,
)
