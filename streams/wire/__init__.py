"""The wire format: bytes to records and back (Avro single-object encoding, the JSON-lines
form), the rules every input must pass, the input gate and the output records."""
