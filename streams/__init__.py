"""leadstage: objective lead stages computed live from Kafka events.

The pure core (definitions, facts, evaluation, lead state) imports neither Faust nor Kafka; the
shell (Faust app, codecs, metrics, web views, CLI, local broker) wires it to the outside world.
"""

__version__ = "0.1.0"
