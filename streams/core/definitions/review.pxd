# C types for the compiled module (the .py says why); nothing else here
import cython

# every evaluation: the summaries read with C calls
@cython.locals(summaries=dict)
cpdef window_exits(compiled, history, now)

# each windowed series of every evaluation: a C call, its list read with C calls
@cython.locals(i=Py_ssize_t)
cpdef _oldest_inside(list times, start, now)
