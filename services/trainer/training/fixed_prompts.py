"""The small fixed prompt set RL uses by default (use_dataset_prompts=false): short passages with gold answers,
written for this project, so the answer-F1 reward applies to them as well."""
from services.trainer.training.data import QAExample

_FIXED = [
    ("What is the capital of France?", "France is a country in Europe. Paris is its capital city.", "Paris"),
    ("Who wrote The Count of Monte Cristo?",
     "The Count of Monte Cristo is an adventure novel by Alexandre Dumas, completed in 1844.", "Alexandre Dumas"),
    ("When was the novel completed?",
     "The Count of Monte Cristo is an adventure novel by Alexandre Dumas, completed in 1844.", "1844"),
    ("What does a bigram model count?",
     "A bigram model counts how often each word follows another word in a text.", "how often each word follows "
     "another word"),
    ("Which layer does an LSTM language model end with?",
     "A word-level LSTM language model embeds each word, runs one LSTM layer and ends with a linear layer over the "
     "vocabulary.", "a linear layer"),
    ("What does SFT stand for?",
     "Supervised fine-tuning, or SFT, trains a pretrained model on examples of the wanted output.",
     "Supervised fine-tuning"),
    ("How many legs does a spider have?", "Spiders are arachnids. Every spider has eight legs and most have eight "
     "eyes.", "eight"),
    ("Where did the ship dock?", "After three weeks at sea the Pharaon entered the harbour of Marseilles and docked "
     "at the old port.", "the old port"),
    ("What colour is the sky on a clear day?", "On a clear day the sky looks blue because air scatters blue light "
     "more than red light.", "blue"),
    ("What is the boiling point of water at sea level?",
     "At sea level, water boils at 100 degrees Celsius.", "100 degrees Celsius"),
    ("Who was imprisoned in the Chateau d'If?",
     "Edmond Dantes was imprisoned in the Chateau d'If, an island fortress off Marseilles.", "Edmond Dantes"),
    ("What do plants need for photosynthesis?",
     "Plants use sunlight, water and carbon dioxide for photosynthesis and give off oxygen.",
     "sunlight, water and carbon dioxide"),
]

FIXED_PROMPTS = [
    QAExample(id=f"fixed-{number}", question=question, context=context, answers=(answer,),
              answer_starts=(context.find(answer),))
    for number, (question, context, answer) in enumerate(_FIXED)
]
