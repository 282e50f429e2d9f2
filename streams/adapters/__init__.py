"""The Kafka and Faust adapters: the only code that touches Faust, aiokafka, kafka-python
or RocksDB internals (consumer, sender, lead store, topics, producer SDK, settings)."""
