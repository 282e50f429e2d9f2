"""The definitions language: loading, type checking, compiling and proving (pure core)."""
