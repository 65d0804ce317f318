"""`make run`'s supervisor: every service and Envoy on this machine, restarted when one dies (python -m launch)."""
