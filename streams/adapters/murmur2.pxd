# C types for the compiled module's integer arithmetic (the .py says why); nothing else here
import cython

cdef unsigned int _M, _SEED, _MASK

@cython.locals(p="const unsigned char *", length=cython.Py_ssize_t, end=cython.Py_ssize_t,
               i=cython.Py_ssize_t, rest=cython.Py_ssize_t, h=cython.uint, k=cython.uint)
cpdef unsigned int murmur2(bytes data)
