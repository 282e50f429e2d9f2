"""`leadstage collect`: events in over HTTP, from browsers, CRMs and CDPs (DESIGN §9)."""
