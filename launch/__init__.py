"""Running the system's processes on this machine: `make run`'s supervisor (python -m launch) and the servers the
tests and benchmarks start on loopback (launch.processes)."""
