"""The engine thread's side of adapter management: LoRA adapter versions copied into slots of the served forward's
LoRA stacks (services/llm/model/lora.py), and let go of, between engine steps, as the catalog
(services/llm/adapters/catalog.py) decides. Rows choose theirs per request by the slot's name
(services/llm/engine/running_batch.py).

A fixed number of slots, LLM_MAX_LOADED_ADAPTERS plus FREE_SLOTS for versions still finishing their requests after a
newer one or another adapter took their place, as vLLM's and S-LoRA's preallocated slots: loading a version copies
its matrices into a free slot of every projection it adapts (milliseconds; the file was read off the engine thread),
zeros elsewhere. A projection gets its stack when the first adapter that adapts it comes; an adapter of a larger
rank than the stacks hold widens them (every slot's columns padded with zeros). With every slot in use a load raises
NoFreeSlot and the catalog waits for one to be let go. Whenever a slot gets other weights, the prefix cache forgets
its blocks: a name reused for other weights can never be answered from the old ones.
"""
from services.llm import metrics
from services.llm.adapters.files import AdapterFiles, NoFreeSlot
from services.llm.model.lora import LoraStack, RowAdapters
from services.llm.request import NO_ADAPTER

# Slots beyond LLM_MAX_LOADED_ADAPTERS: an adapter evicted (or replaced by a new version) keeps its slot until its
# last request ends, and the one taking its place needs a slot meanwhile.
FREE_SLOTS = 2
SMALLEST_RANK = 8  # the stacks' first rank at least: a later adapter of a rank up to it fits without widening


class AdapterSlots:
    """Made by the engine once the base model is loaded, with its forward and prefix cache (None when off)."""

    def __init__(self, forward, prefix_cache, max_loaded: int) -> None:
        self.forward, self.prefix_cache = forward, prefix_cache
        self.names = [f"slot-{index}" for index in range(max(1, max_loaded) + FREE_SLOTS)]
        self._free = list(self.names)  # the latest freed last (and taken first)
        self._stacks: dict[int, LoraStack] = {}  # by id() of the projection holding it
        self._rank = 0

    @property
    def in_use(self) -> tuple[int, ...]:
        return tuple(index for index, name in enumerate(self.names) if name not in self._free)

    def load(self, adapter: AdapterFiles) -> str:
        """Copies the adapter (read off the engine thread) into a free slot; returns the slot's name, which its rows
        use. ValueError for an adapter the forward cannot compute (a module it does not have, a LoRA variant)."""
        modules = adapter.modules()
        unknown = sorted(set(modules) - set(self.forward.targets))
        if unknown:
            raise ValueError(f"it adapts {', '.join(unknown[:3])}{' …' if len(unknown) > 3 else ''}, which the served "
                             f"forward ({self.forward.kind}) does not take LoRA on")
        if not self._free:
            raise NoFreeSlot(f"all {len(self.names)} adapter slots are in use")
        self._widen(max(a.shape[0] for a, _, _ in modules.values()))
        name = self._free[-1]
        slot = self.names.index(name)
        self._forget(name)
        for target_name, target in self.forward.targets.items():
            stack = self._stack(target) if target_name in modules else self._stacks.get(id(target.holder))
            if stack is not None:
                a, b, scale = modules.get(target_name, (None, None, 0.0))
                stack.write(slot, target.part, a, b, scale)
        self._free.remove(name)  # only now: a slot whose copy failed stays free
        return name

    def unload(self, name: str) -> None:
        """No request uses `name`'s version any more: the slot is free for the next load."""
        self._forget(name)
        self._free.append(name)

    def rows(self, names: list[str]) -> RowAdapters | None:
        """The slots of a forward pass's rows (by their slot names; NO_ADAPTER: none); None when no row has one."""
        if all(name == NO_ADAPTER for name in names):
            return None
        return RowAdapters([-1 if name == NO_ADAPTER else self.names.index(name) for name in names], self.in_use)

    def _widen(self, rank: int) -> None:
        if rank > self._rank:
            self._rank = max(rank, SMALLEST_RANK)
            for stack in self._stacks.values():
                stack.grow(self._rank)

    def _stack(self, target) -> LoraStack:
        """The stack of `target`'s projection, made when the first adapter of one of its parts comes."""
        holder = target.holder
        stack = self._stacks.get(id(holder))
        if stack is None:
            stack = LoraStack(list(target.parts), holder.in_features, holder.out_features, len(self.names),
                              self._rank, holder.dtype, holder.device, holder.is_packed)
            self._stacks[id(holder)] = holder.lora = stack
        return stack

    def _forget(self, name: str) -> None:
        if self.prefix_cache is not None:
            self.prefix_cache.forget(name)
            metrics.PREFIX_CACHE_TOKENS.set(self.prefix_cache.tokens)
