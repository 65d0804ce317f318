"""A multi grader's `calculate_output`, read as a weighted sum of its graders. OpenAI evaluates a formula of its
own; we accept the part of it that trl's GRPOTrainer can train on as it is, one reward function per grader and a
constant weight each, and refuse the rest. Read with `ast`, never evaluated."""
import ast
import math

from services.trainer.training.graders.problems import GraderProblem

ACCEPTED = ("a weighted sum of the graders' names: numbers, + and -, * and / by a number, and parentheses, "
            "e.g. 0.5 * a + 0.5 * b or (a + b) / 2")
MAX_CHARS = 1000  # a formula is a line, and ast's recursion on a long one is the only unbounded cost here

_Linear = tuple[dict[str, float], float]  # (the graders' weights, the constant term)


class _Refused(Exception):
    def __init__(self, why: str):
        self.why = why


def _constant_only(linear: _Linear) -> bool:
    return not any(linear[0].values())


def _scaled(linear: _Linear, factor: float) -> _Linear:
    return {name: weight * factor for name, weight in linear[0].items()}, linear[1] * factor


def _summed(left: _Linear, right: _Linear, sign: float) -> _Linear:
    weights = dict(left[0])
    for name, weight in right[0].items():
        weights[name] = weights.get(name, 0.0) + sign * weight
    return weights, left[1] + sign * right[1]


def _linear(node, names) -> _Linear:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return {}, float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise _Refused(f"{node.id!r} is not one of its graders ({', '.join(names)})")
        return {node.id: 1.0}, 0.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _scaled(_linear(node.operand, names), -1.0 if isinstance(node.op, ast.USub) else 1.0)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        sign = 1.0 if isinstance(node.op, ast.Add) else -1.0
        return _summed(_linear(node.left, names), _linear(node.right, names), sign)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _linear(node.left, names), _linear(node.right, names)
        if _constant_only(left):
            return _scaled(right, left[1])
        if _constant_only(right):
            return _scaled(left, right[1])
        raise _Refused(f"{ast.unparse(node)!r} multiplies graders together")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _linear(node.left, names), _linear(node.right, names)
        if not _constant_only(right):
            raise _Refused(f"{ast.unparse(node)!r} divides by a grader")
        if right[1] == 0:
            raise _Refused(f"{ast.unparse(node)!r} divides by 0")
        return _scaled(left, 1.0 / right[1])
    if isinstance(node, ast.Call):
        raise _Refused(f"{ast.unparse(node)!r} calls a function")
    raise _Refused(f"{ast.unparse(node)!r} is not a number, a grader's name, +, -, * or /")


def weights_of(expression: str, names, param: str) -> dict[str, float]:
    """Each grader's weight in `expression`, in the order of `names`; a grader the expression leaves out weighs 0
    (it is still scored, and trl still logs it: a way to watch a metric without training on it)."""
    def refuse(why: str):
        return GraderProblem(param, f"{param} {expression!r} is not accepted here: {why}. "
                                    f"calculate_output must be {ACCEPTED}.")
    names = list(names)
    if len(expression) > MAX_CHARS:
        raise refuse(f"it is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise refuse("it is not a valid expression") from None
    try:
        weights, constant = _linear(tree.body, names)
    except _Refused as refused:
        raise refuse(refused.why) from None
    except RecursionError:
        raise refuse("it is nested too deeply") from None
    if constant != 0:
        raise refuse(f"it adds a constant ({constant:g}), which is no grader's weight")
    weights = {name: weights.get(name, 0.0) + 0.0 for name in names}  # + 0.0 turns -0.0 into 0.0
    if not all(math.isfinite(weight) for weight in weights.values()):
        raise refuse("a weight is not a finite number")
    if abs(sum(weights.values())) < 1e-12:
        listed = ", ".join(f"{name}: {weight:g}" for name, weight in weights.items())
        raise refuse(f"weights that sum to 0 ({listed}) put the score on no grader's scale; give weights with a "
                     f"non-zero sum")
    return weights
