"""Tools for developing textgen, used by the tests, benchmarks and suites and never by a service: real servers on
loopback (devtools.processes), models with random weights built in seconds (devtools.models), small SQuAD-format
data sets (devtools.squad) and the shipped sample's invented facts (devtools.invented_facts); and the offline
post-training tooling (devtools.post_training: the pretrained stand-in, the one-command post-training run)."""
