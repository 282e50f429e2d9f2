"""The pure core: the definitions language, facts, evaluation and lead state. Plain
functions and data; no Faust, Kafka client, Prometheus, RocksDB, HTTP or terminal libraries."""
