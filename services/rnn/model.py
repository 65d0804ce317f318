"""The word-level LSTM language model: embedding 100 -> one-layer LSTM 128 -> linear over the vocabulary."""
import torch
from torch import nn

EMBEDDING_DIM = 100
HIDDEN_DIM = 128

State = tuple[torch.Tensor, torch.Tensor]  # the LSTM's (h, c), each (1, batch, HIDDEN_DIM)


class LstmLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int = EMBEDDING_DIM, hidden_dim: int = HIDDEN_DIM) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=1, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocab_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> next-word logits (batch, time, vocab) and the state after the last step.

        Passing the returned state back in continues the sequence, so generation costs one step per word."""
        hidden, state = self.lstm(self.embedding(ids), state)
        return self.output(hidden), state

    @property
    def dimensions(self) -> dict[str, int]:
        return {
            "vocab_size": self.embedding.num_embeddings,
            "embedding_dim": self.embedding.embedding_dim,
            "hidden_dim": self.lstm.hidden_size,
        }
