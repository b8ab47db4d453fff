"""Reading, validating and interpreting configs."""
