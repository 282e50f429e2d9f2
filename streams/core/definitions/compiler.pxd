# C types for the compiled module (the .py says why); nothing else here
import cython

# every evaluation of a windowed count: one read of the activity summaries per activity
@cython.locals(total=cython.longlong)
cpdef _window_count(dict summaries, activities, start, end)
