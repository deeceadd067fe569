"""Run lifecycle: each run trains in its own thread, off the event loop."""
