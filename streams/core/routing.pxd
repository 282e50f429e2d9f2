# C types for the compiled module (the .py says why); nothing else here
cdef dict _ROUTES
