"""The training pipeline, with no gRPC in it: data, SFT, RL and its rewards, evaluation, progress, reports and
publishing. The job service's worker runs it for a job; `python -m services.trainer.commands` runs it by hand."""
