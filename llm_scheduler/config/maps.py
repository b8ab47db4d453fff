"""Maps (`TaskConfig.for_each`): their defaults and limits, shared by validation and the engine."""

from __future__ import annotations

from llm_scheduler.v1 import config_pb2

__all__ = [
    "DEFAULT_MAP_ITEMS",
    "MAX_MAP_ITEMS",
    "is_map",
    "map_index_variable",
    "map_item_variable",
    "map_max_items",
]

# The most items a map takes when its config sets no limit.
DEFAULT_MAP_ITEMS = 1_000
# The highest limit a map's config may set.
MAX_MAP_ITEMS = 100_000


def is_map(task: config_pb2.TaskConfig) -> bool:
    """Whether the task runs once per item of a list."""
    return task.HasField("for_each")


def map_item_variable(config: config_pb2.MapConfig) -> str:
    """The variable an item is bound to: ``item`` by default."""
    return config.item_variable or "item"


def map_index_variable(config: config_pb2.MapConfig) -> str:
    """The variable an item's index is bound to: ``index`` by default."""
    return config.index_variable or "index"


def map_max_items(config: config_pb2.MapConfig) -> int:
    """The most items the map takes: its ``max_items``, or `DEFAULT_MAP_ITEMS`."""
    return config.max_items or DEFAULT_MAP_ITEMS
