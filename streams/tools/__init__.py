"""The tools around the worker: the CLI, the local broker, the demo, the generator and
the reports."""
