"""Event-driven execution: documents, submitting, the protocol, dispatcher, cancel and resume."""
