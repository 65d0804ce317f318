"""The trained model on disk: MODELS_DIR/rnn/{model.pt, vocab.json, metadata.json}, replaced atomically."""
import dataclasses
import json
import pathlib

import torch

from services.common.atomic import replacing_directory
from services.rnn.model import LstmLanguageModel
from services.rnn.vocab import Vocabulary

WEIGHTS = "model.pt"  # a torch state_dict, loaded with weights_only=True (no pickled code)
VOCAB = "vocab.json"
METADATA = "metadata.json"


def model_dir(models_dir: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(models_dir) / "rnn"


def exists(directory: pathlib.Path) -> bool:
    return all((directory / name).is_file() for name in (WEIGHTS, VOCAB, METADATA))


@dataclasses.dataclass
class TrainedModel:
    model: LstmLanguageModel
    vocab: Vocabulary
    metadata: dict


def save(directory: pathlib.Path, trained: TrainedModel) -> None:
    """Writes into a temporary folder beside `directory`, then renames it into place: a crash or a concurrent
    reader never sees a half-written model."""
    with replacing_directory(directory) as staging:
        torch.save(trained.model.state_dict(), staging / WEIGHTS)
        trained.vocab.save(staging / VOCAB)
        metadata = {**trained.metadata, **trained.model.dimensions}
        (staging / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def load(directory: pathlib.Path) -> TrainedModel:
    """Raises FileNotFoundError when no complete model is there."""
    directory = pathlib.Path(directory)
    if not exists(directory):
        raise FileNotFoundError(f"no trained LSTM model at {directory}")
    metadata = json.loads((directory / METADATA).read_text(encoding="utf-8"))
    vocab = Vocabulary.load(directory / VOCAB)
    model = LstmLanguageModel(len(vocab), metadata["embedding_dim"], metadata["hidden_dim"])
    model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    return TrainedModel(model, vocab, metadata)
