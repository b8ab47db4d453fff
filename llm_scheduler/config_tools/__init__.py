"""Config tools: create_sample and config_reader."""
