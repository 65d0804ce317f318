"""Request limits, declared the same way by every service: a frozen dataclass of the request's tunable fields, each
with its default, and each range an `Annotated` bound on the field's type. The gRPC servers, the trainer's command
line and its --help all read them from there, and every range error is worded here, once. Free of heavy imports.

    @dataclasses.dataclass(frozen=True)
    class BigramParams:
        length: Annotated[int, Bound(1, 1000)] = 15

    params = from_request(BigramParams, request)     # unset fields take their defaults
    violations.add_all(out_of_range(params))
"""
import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Bound:
    low: float
    high: float
    low_open: bool = False  # learning rates and temperatures that divide: > 0, not >= 0

    def __str__(self) -> str:
        return f"greater than {self.low} and at most {self.high}" if self.low_open else \
            f"between {self.low} and {self.high}"

    def holds(self, value: float) -> bool:
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high


def bounds(cls) -> dict[str, Bound]:
    """field name -> its Bound, for every bounded field of a params dataclass."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {name: next(m for m in hint.__metadata__ if isinstance(m, Bound))
            for name, hint in hints.items()
            if typing.get_origin(hint) is typing.Annotated and any(isinstance(m, Bound) for m in hint.__metadata__)}


def out_of_range(params) -> list[tuple[str, str]]:
    """(field, description) for each value of `params` (a params dataclass) outside its bound."""
    return [(name, f"{name} must be {bound} (got {value})") for name, bound in bounds(type(params)).items()
            if (value := getattr(params, name)) is not None and not bound.holds(value)]


def from_request(cls, request):
    """The params dataclass `cls` from a request message: each field the request sets (they are all `optional` in
    the .proto), the documented default for each it leaves unset."""
    return cls(**{f.name: getattr(request, f.name) for f in dataclasses.fields(cls) if request.HasField(f.name)})
