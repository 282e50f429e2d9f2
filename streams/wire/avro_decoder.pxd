# C types for the compiled module's integer arithmetic (the .py says why); nothing else here
import cython

@cython.locals(n=cython.ulonglong, b=cython.ulonglong, shift=cython.int, value=cython.longlong)
cpdef tuple _varint(object data, Py_ssize_t pos, unsigned long long first)
