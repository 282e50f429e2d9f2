# C types for the compiled module's integer arithmetic (the .py says why); nothing else here
import cython

@cython.locals(v=cython.longlong, z=cython.ulonglong, out=bytearray)
cpdef bytes _long(object n)
