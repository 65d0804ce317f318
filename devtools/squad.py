"""Small SQuAD-format data sets written on the spot, for the trainer's tests."""
import json
import pathlib

_CAPITALS = [("Paris", "France"), ("Rome", "Italy"), ("Madrid", "Spain"), ("Berlin", "Germany"),
             ("Lisbon", "Portugal"), ("Vienna", "Austria"), ("Oslo", "Norway"), ("Athens", "Greece"),
             ("Dublin", "Ireland"), ("Warsaw", "Poland"), ("Prague", "the Czech Republic"), ("Bern", "Switzerland")]


def squad_record(number: int, city: str, country: str, padding: int) -> dict:
    filler = "The harbour was busy that morning and the ships came in one by one. " * padding
    context = f"{filler}{city} is the capital of {country}. {filler}".strip()
    return {"id": f"q{number}", "title": country, "context": context,
            "question": f"What is the capital of {country}?",
            "answers": {"text": [city], "answer_start": [context.index(f"{city} is the capital")]}}


def write_squad_folder(folder: pathlib.Path) -> pathlib.Path:
    """train.jsonl and validation.jsonl with SQuAD's fields; some contexts far longer than max_length."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [squad_record(n, city, country, padding=(n * 7) % 40)
               for n, (city, country) in enumerate(_CAPITALS * 3)]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in records[:30]) + "\n")
    (folder / "validation.jsonl").write_text("\n".join(json.dumps(r) for r in records[30:]) + "\n")
    return folder

