"""Event-driven execution: the document model, submitting, the protocol, the dispatcher."""
