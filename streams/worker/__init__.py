"""The running worker: assembly of the Faust app, the batch pipeline, the commit protocol,
the pause fence, metrics and the HTTP pages."""
