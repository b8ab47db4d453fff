"""Generated protobuf code (`make proto`); never edit by hand."""
