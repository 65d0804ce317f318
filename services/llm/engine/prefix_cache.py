"""Automatic prefix caching: the keys and values of recent prompts, kept in blocks of BLOCK_TOKENS tokens, so that a
prompt starting like an earlier one (SQuAD's several questions on one passage, a chat resent with one more turn, the
same system prompt every time) prefills only the rest, as vLLM's automatic prefix caching does.

A block is keyed by the adapter that computed it (its slot: the catalog gives every loaded version a slot of its own,
and the engine forgets a name's blocks whenever it loads or deletes that name) and by a chained hash, as vLLM keys
its blocks: a 128-bit BLAKE2b digest of the previous block's digest and this block's token ids. So a block is only
ever reused after the same tokens under the same weights (two different prompts sharing a key would need a BLAKE2b
collision), and a prompt's keys cost time in proportion to its length: keying each block by every token id from the
prompt's start, as this cache did first, cost the square of it. Blocks rather than single tokens: a stored prompt
shares its blocks with every prompt that starts the same way, so five questions on one passage hold the passage
once.

At most `max_tokens` tokens are held (LLM_PREFIX_CACHE_TOKENS); the least recently used blocks go first. A prompt's
blocks are marked used from its last to its first, so a prefix loses its tail before its head: a block whose
predecessor is gone could never be reached again.

Used only from the engine thread.
"""
import array
import collections
import dataclasses
import hashlib

import torch

BLOCK_TOKENS = 16  # vLLM's default block size

KeysAndValues = list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [heads, tokens, head_dim] each


@dataclasses.dataclass
class Prefix:
    length: int  # tokens of the prompt it covers
    layers: KeysAndValues


class PrefixCache:
    def __init__(self, max_tokens: int, block_tokens: int = BLOCK_TOKENS) -> None:
        self.max_tokens = max_tokens
        self.block_tokens = block_tokens
        self._blocks: collections.OrderedDict[tuple, KeysAndValues] = collections.OrderedDict()

    @property
    def tokens(self) -> int:
        return len(self._blocks) * self.block_tokens

    def _keys(self, adapter: str, ids: list[int]) -> list[tuple[str, bytes]]:
        """The key of each whole block of `ids`, from the first."""
        keys, digest = [], b""
        for end in range(self.block_tokens, len(ids) + 1, self.block_tokens):
            block = array.array("q", ids[end - self.block_tokens:end]).tobytes()
            digest = hashlib.blake2b(digest + block, digest_size=16).digest()
            keys.append((adapter, digest))
        return keys

    def _touch(self, keys: list[tuple]) -> None:
        for key in reversed(keys):
            self._blocks.move_to_end(key)

    def longest_prefix(self, adapter: str, ids: list[int]) -> Prefix | None:
        """The cached keys and values of the longest prefix of `ids` computed under `adapter`, leaving at least the
        last token to prefill (its logits choose the first new token); None when no block matches."""
        found = []
        for key in self._keys(adapter, ids):
            if key not in self._blocks:
                break
            found.append(key)
        length = min(len(found) * self.block_tokens, len(ids) - 1)
        if length <= 0:
            return None
        self._touch(found)
        layers = [(torch.cat([self._blocks[key][layer][0] for key in found], dim=1)[:, :length],
                   torch.cat([self._blocks[key][layer][1] for key in found], dim=1)[:, :length])
                  for layer in range(len(self._blocks[found[0]]))]
        return Prefix(length, layers)

    def first_block(self, adapter: str, ids: list[int]) -> tuple | None:
        """The key of the first block of `ids` (None when it is shorter than a block, or nothing is ever kept)."""
        if self.max_tokens < self.block_tokens:
            return None
        keys = self._keys(adapter, ids[:self.block_tokens])
        return keys[0] if keys else None

    def wants(self, adapter: str, ids: list[int]) -> bool:
        """Whether storing this prompt would add a block (else its keys and values need not be gathered)."""
        return self.max_tokens >= self.block_tokens and any(
            key not in self._blocks for key in self._keys(adapter, ids))

    def store(self, adapter: str, ids: list[int], layers: KeysAndValues) -> None:
        """Keeps the blocks of `ids` not held yet, from `layers` (the prompt's keys and values, one column per token
        of `ids`), then evicts the least recently used blocks beyond the bound."""
        keys = self._keys(adapter, ids)
        for index, key in enumerate(keys):
            if key not in self._blocks:
                columns = slice(index * self.block_tokens, (index + 1) * self.block_tokens)
                # Copies: a view would keep the whole prompt's tensors alive after the block is evicted.
                self._blocks[key] = [(k[:, columns].clone(), v[:, columns].clone()) for k, v in layers]
        self._touch(keys)
        while self.tokens > self.max_tokens:
            self._blocks.popitem(last=False)

    def forget(self, adapter: str) -> None:
        """Drops every block computed under `adapter`: its weights are about to change or have gone."""
        for key in [key for key in self._blocks if key[0] == adapter]:
            del self._blocks[key]
