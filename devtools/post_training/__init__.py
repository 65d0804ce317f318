"""The offline post-training tooling, run by hand and by tests/test_post_training.py, never by a trainer job (so it
is not in the trainer image):

    python -m devtools.post_training pretrain     (make tiny-model: the offline stand-in, stand_in.py)
    python -m devtools.post_training post-train   (make post-train: the stand-in if missing, SFT, RL, evaluation and
                                                   a report, post_train.py)
    python -m devtools.post_training rl-tuning-split   (the train-side split RL's settings are chosen on,
                                                        rl_tuning.py)

The stand-in's pretraining text is synthetic_qa.py's: the shipped SQuAD sample's templates (devtools.invented_facts)
filled with new entities."""
