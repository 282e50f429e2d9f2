cdef class InputRecord:
    cdef readonly object topic, partition, offset, timestamp, key, value, headers
