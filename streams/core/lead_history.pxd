# C types for the compiled module (the .py says why); nothing else here
import cython

# the latest event's fields, for most events: C calls on the event dict
@cython.locals(kept=dict)
cpdef dict _kept(dict event)
