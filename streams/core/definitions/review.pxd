# C types for the compiled module (the .py says why); nothing else here
import cython

# every evaluation: the summaries and series read with C calls
@cython.locals(summaries=dict, series=list)
cpdef window_exits(compiled, history, now)
