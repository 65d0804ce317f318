"""Tools for developing textgen, used by the tests, benchmarks and suites and never by a service: real servers on
loopback (devtools.processes), models with random weights built in seconds (devtools.models) and small SQuAD-format
data sets (devtools.squad)."""
