"""The invented entities behind the shipped SQuAD-format sample (data/squad_sample): each category's facts, its
context sentences (each a list of interchangeable wordings) and its questions, and the rows they render to.

Every fact was made up for this project (towns, rivers, inventors, ships, scientists, companies, events and bridges
that never existed), so the sample ships under the project's own licence. `data/squad_sample/build.py` writes the
sample from `sample_splits()`; `synthetic_qa` fills the same templates with new entities to pretrain the stand-in.
"""
import hashlib
import random
import re

SEED = 20260511
VALIDATION_ENTITIES_PER_CATEGORY = 2
FIELD = re.compile(r"\{(\w+)\}")
# Validation rows, like SQuAD's with their several annotators, also accept a bare name for "the carter Samuel Oakes".
ROLE_THEN_NAME = re.compile(r"^(?:the|a|his|her) (?:(?!of\b)[a-z]+ ){1,2}(?=[A-Z])")

# Each category: the fields of its fact rows, the context as a list of sentences (each a list of interchangeable
# wordings), and its questions as (type, answer field, wordings). The title field names the entity.
CATEGORIES = {
    "town": {
        "title": "name",
        "fields": ("name", "region", "river", "year", "founder", "reason", "population", "industry", "landmark"),
        "rows": [
            ("Bramblewick", "the Harl Valley", "Ostwater", "1642", "Edda Marrow",
             "the ford there was shallow enough for ox carts", "4,300", "wool weaving",
             "a covered market with a copper roof"),
            ("Quillhaven", "Lower Sennet", "Lissom", "1718", "Captain Jory Vell",
             "the bay was sheltered from the winter gales", "11,800", "herring fishing",
             "a lighthouse painted in red and white bands"),
            ("Torrowby", "the Grey Moors", "Caddle", "1589", "the monk Aldric Fenn",
             "a spring there never froze", "2,150", "peat cutting", "the ruins of a stone abbey"),
            ("Milden Cross", "the Orrin Lowlands", "Wend", "1803", "the surveyor Hattie Loame",
             "two coaching roads met at the spot", "7,600", "brewing",
             "a clock tower that chimes thirteen times at noon"),
            ("Saltreach", "the Pell Marshes", "Pell", "1671", "the merchant Osric Dane",
             "salt could be dried on the flat marshes", "9,050", "salt making",
             "a wooden pier nearly half a mile long"),
            ("Kestlemoor", "the Aulden Hills", "Brisk", "1755", "the miller Tobias Crane",
             "the stream fell fast enough to turn a water wheel", "3,400", "flour milling",
             "a mill seven storeys high"),
            ("Ferndell", "the Lakes of Oru", "Sable", "1820", "the botanist Mina Ostrow",
             "the soil was rich enough for orchards", "5,700", "apple growing",
             "a cider fair held every October"),
        ],
        "sentences": [
            ["{name} is a town in {region}, on the banks of the {river}.",
             "The town of {name} lies in {region}, where the {river} bends towards the sea.",
             "{name} sits in {region} beside the {river}."],
            ["It was founded in {year} by {founder}, who chose the site because {reason}.",
             "Records say {founder} settled there in {year} because {reason}."],
            ["Today about {population} people live there, and most of them work in {industry}.",
             "Its population of roughly {population} earns a living mainly from {industry}."],
            ["The town is best known for {landmark}.", "Visitors come chiefly to see {landmark}."],
        ],
        "questions": [
            ("where", "region", ["Where is {name}?", "Where is the town of {name} located?"]),
            ("which", "river", ["Which river flows past {name}?", "Which river runs beside {name}?"]),
            ("when", "year", ["When was {name} founded?"]),
            ("who", "founder", ["Who founded {name}?", "Who settled the site of {name} first?"]),
            ("why", "reason", ["Why was {name} founded where it stands?", "Why did its founder choose the site of {name}?"]),
            ("how many", "population", ["How many people live in {name}?", "How many inhabitants does {name} have?"]),
            ("what", "industry", ["What work employs most people in {name}?"]),
            ("what", "landmark", ["What is {name} best known for?", "What do visitors to {name} come to see?"]),
        ],
    },
    "river": {
        "title": "name",
        "fields": ("name", "source", "length", "sea", "tributaries", "mouth", "fish", "explorer", "year", "reason"),
        "rows": [
            ("Ostwater", "the Calder Mountains", "212", "the Grey Sea", "14", "Harlmouth", "silver eels",
             "Anselm Rook", "1734", "a chain of rapids blocks its middle reaches"),
            ("Lissom", "Lake Varra", "96", "the Sennet Sound", "6", "Quillhaven", "brown trout",
             "Greta Halloway", "1761", "its channel silts up every spring"),
            ("Caddle", "the Grey Moors", "58", "the Northern Reach", "4", "Dunmere", "freshwater pearl mussels",
             "Piet Marrable", "1790", "the water is too shallow below the moors"),
            ("Wend", "the Fennick Hills", "143", "the Orrin Gulf", "9", "Aldermouth", "pike",
             "the cartographer Ilse Varn", "1812", "a low stone bridge spans it at Milden Cross"),
            ("Sable", "the Oru glaciers", "305", "the Bay of Tamsin", "22", "Carrow", "grayling",
             "the explorer Maurits Keel", "1848", "it freezes solid for four months of the year"),
            ("Brisk", "Mount Aulden", "41", "the Pell Estuary", "3", "Saltreach", "crayfish",
             "the schoolteacher Agnes Pim", "1866", "it drops over a long series of waterfalls"),
            ("Tamberlane", "the Red Downs", "178", "the Sea of Corran", "11", "Vessa", "sturgeon",
             "Captain Hollis Wren", "1702", "sandbanks shift across its mouth after every storm"),
        ],
        "sentences": [
            ["The {name} rises in {source} and runs for about {length} kilometres before it empties into {sea}.",
             "From its source in {source}, the {name} flows some {length} kilometres to {sea}."],
            ["Along the way it gathers {tributaries} tributaries, and the port of {mouth} stands at its mouth.",
             "No fewer than {tributaries} smaller streams join it before it reaches {mouth}, the port at its mouth."],
            ["Its waters are famous for {fish}.", "Anglers prize the river for its {fish}."],
            ["The whole course was first mapped by {explorer} in {year}.",
             "It was {explorer} who first mapped the whole course, in {year}."],
            ["Large ships cannot sail far upstream because {reason}.",
             "Only small boats use it, because {reason}."],
        ],
        "questions": [
            ("where", "source", ["Where does the {name} rise?", "Where is the source of the {name}?"]),
            ("how many", "length", ["How many kilometres does the {name} run?"]),
            ("which", "sea", ["Which sea does the {name} empty into?"]),
            ("how many", "tributaries", ["How many tributaries join the {name}?"]),
            ("which", "mouth", ["Which port stands at the mouth of the {name}?"]),
            ("what", "fish", ["What is the {name} famous for?", "What do anglers prize in the {name}?"]),
            ("who", "explorer", ["Who first mapped the course of the {name}?"]),
            ("when", "year", ["When was the course of the {name} first mapped?"]),
            ("why", "reason", ["Why can large ships not sail far up the {name}?"]),
        ],
    },
    "inventor": {
        "title": "name",
        "fields": ("name", "short", "birthplace", "trade", "invention", "year", "reason", "patents", "company"),
        "rows": [
            ("Orla Penhallow", "Penhallow", "Saltreach", "a clockmaker", "folding brass sextant", "1779",
             "the old wooden ones warped at sea", "17", "Penhallow & Daughters"),
            ("Benedikt Sorrel", "Sorrel", "Torrowby", "a blacksmith", "steam-driven peat press", "1824",
             "cutting peat by hand took all summer", "9", "the Moorland Press Company"),
            ("Ada Quenby", "Quenby", "Ferndell", "a gardener", "mechanical apple sorter", "1851",
             "bruised apples spoiled whole barrels of cider", "23", "Quenby Orchard Works"),
            ("Lucan Threlfall", "Threlfall", "Kestlemoor", "a millwright", "self-oiling wheel bearing", "1788",
             "the mill wheels kept seizing in cold weather", "12", "Threlfall and Crane"),
            ("Hesper Moy", "Moy", "Quillhaven", "a sailmaker", "clockwork fog horn", "1836",
             "fishing boats kept striking the rocks in fog", "31", "the Harbour Signal Company"),
            ("Rufus Galloway", "Galloway", "Milden Cross", "a coach builder", "sprung carriage seat", "1812",
             "passengers complained about the rough coaching roads", "6", "Galloway Coachworks"),
            ("Tamsin Arkwell", "Arkwell", "Bramblewick", "a weaver", "punched-card loom governor", "1767",
             "mistakes in the pattern wasted whole bolts of wool", "14", "the Arkwell Loom Company"),
        ],
        "sentences": [
            ["{name} was born in {birthplace} and trained as {trade}.",
             "Born in {birthplace}, {name} first worked as {trade}."],
            ["In {year} {short} built the first {invention}, because {reason}.",
             "{short} built the first {invention} in {year}, because {reason}."],
            ["Over a long career {short} was granted {patents} patents.",
             "{short} went on to hold {patents} patents."],
            ["To make and sell the device, {short} set up {company}.",
             "The device was made by {company}, a firm {short} set up for the purpose."],
        ],
        "questions": [
            ("where", "birthplace", ["Where was {name} born?"]),
            ("what", "trade", ["What did {name} train as?", "What was {name}'s first trade?"]),
            ("what", "invention", ["What did {name} build in {year}?"]),
            ("when", "year", ["When did {short} build the first {invention}?"]),
            ("who", "name", ["Who built the first {invention}?", "Who invented the {invention}?"]),
            ("why", "reason", ["Why did {short} build the {invention}?"]),
            ("how many", "patents", ["How many patents did {name} hold?", "How many patents was {name} granted?"]),
            ("which", "company", ["Which firm did {name} set up?"]),
        ],
    },
    "ship": {
        "title": "name",
        "fields": ("name", "kind", "shipyard", "year", "captain", "crew", "destination", "cargo", "fate", "fate_q",
                   "reason"),
        "rows": [
            ("Marigold Dawn", "three-masted barque", "Harlmouth", "1851", "Ivo Castellan", "34", "Vessa",
             "timber and tar", "was wrecked on the Skerry Rocks", "was the {name} wrecked",
             "her compass had been knocked out of true in a storm"),
            ("Saint Brannoc", "paddle steamer", "Aldermouth", "1862", "Wilhelmina Drake", "22", "Carrow",
             "mail and passengers", "was broken up for scrap", "was the {name} broken up",
             "her boilers had grown too weak to hold steam"),
            ("Cormorant", "fishing schooner", "Quillhaven", "1789", "Abel Tremayne", "11", "the Kettle Banks",
             "salted herring", "was sold to a museum", "was the {name} sold to a museum",
             "she was the last schooner of her kind still afloat"),
            ("Silver Wake", "clipper", "Vessa", "1868", "Rosalind Okafor", "41", "Harlmouth",
             "tea and silk", "burned at her moorings", "did the {name} burn",
             "a lamp overturned in the galley"),
            ("Iron Heron", "screw steamer", "Carrow", "1884", "Marius Bell", "27", "Saltreach", "coal",
             "was sunk as a breakwater", "was the {name} sunk",
             "the harbour needed a barrier against winter storms"),
            ("Wandering Kate", "brigantine", "Saltreach", "1743", "Nell Forsythe", "18", "Aldermouth",
             "barrels of salt", "was captured by privateers", "was the {name} captured",
             "she was becalmed without an escort"),
            ("Northern Gull", "whaler", "Dunmere", "1809", "Jonas Ekberg", "52", "the ice fields of Haldor",
             "harpoons and empty casks", "was crushed by pack ice", "was the {name} crushed",
             "she stayed too late into the autumn"),
        ],
        "sentences": [
            ["The {name} was a {kind} launched at {shipyard} in {year}.",
             "Launched at {shipyard} in {year}, the {name} was a {kind}."],
            ["Under Captain {captain} she carried a crew of {crew}.",
             "Her crew of {crew} sailed under Captain {captain}."],
            ["She made regular voyages to {destination}, carrying {cargo}.",
             "For most of her life she sailed to {destination} with {cargo}."],
            ["Her career ended when she {fate}, because {reason}.",
             "In the end she {fate}; the reason was that {reason}."],
        ],
        "questions": [
            ("what", "kind", ["What kind of ship was the {name}?"]),
            ("which", "shipyard", ["Which shipyard launched the {name}?"]),
            ("when", "year", ["When was the {name} launched?"]),
            ("who", "captain", ["Who commanded the {name}?", "Who was captain of the {name}?"]),
            ("how many", "crew", ["How many sailors crewed the {name}?"]),
            ("where", "destination", ["Where did the {name} make regular voyages to?"]),
            ("what", "cargo", ["What did the {name} carry?"]),
            ("why", "reason", ["Why {fate_q}?"]),
        ],
    },
    "scientist": {
        "title": "name",
        "fields": ("name", "short", "field", "university", "discovery", "year", "collaborator", "reason",
                   "papers", "award"),
        "rows": [
            ("Cordelia Ashgrove", "Ashgrove", "chemist", "the University of Harlmouth",
             "a blue dye made from lichen", "1872", "her student Piers Lamb",
             "lichen had been thought to hold no colour at all", "64", "the Orrin Medal"),
            ("Teodor Wyck", "Wyck", "astronomer", "Carrow Observatory College",
             "a comet that returns every forty-one years", "1830", "his sister Margit Wyck",
             "no comet with so short a period had been seen before", "112", "the Gold Star of Carrow"),
            ("Bettina Roux", "Roux", "geologist", "the Vessa Mining School",
             "fossil sea shells on the summit of Mount Aulden", "1858", "the quarryman Hob Tennant",
             "the mountain lies two hundred miles from the sea", "37", "the Aulden Prize"),
            ("Alaric Fenwick", "Fenwick", "botanist", "the Ferndell Institute",
             "a pear tree that flowers twice a year", "1843", "the gardener Wren Astley",
             "no fruit tree in the region had ever flowered in autumn", "29", "the Orchard Society Medal"),
            ("Yusuf Calder", "Calder", "physician", "the Saltreach Infirmary School",
             "that marsh fever spread through the drinking wells", "1861", "the nurse Lottie Brand",
             "most doctors blamed the fever on bad air", "48", "the Pell Cross"),
            ("Maren Olstad", "Olstad", "physicist", "the Polytechnic of Aldermouth",
             "a way to measure the speed of sound in ice", "1889", "the engineer Casimir Lutz",
             "nobody had managed to time sound over so short a distance", "71", "the Northern Science Prize"),
            ("Elias Thorne", "Thorne", "zoologist", "Dunmere College",
             "a blind fish living in the caves of the Caddle gorge", "1877", "the guide Sefa Morrow",
             "few believed that fish could live in total darkness", "52", "the Caddle Society Medal"),
        ],
        "sentences": [
            ["{name} was a {field} who taught for many years at {university}.",
             "For most of a long career, the {field} {name} taught at {university}."],
            ["In {year} {short} discovered {discovery}, working alongside {collaborator}.",
             "Working with {collaborator}, {short} discovered {discovery} in {year}."],
            ["The finding surprised colleagues because {reason}.",
             "Colleagues were astonished, because {reason}."],
            ["{short} published {papers} papers and received {award}.",
             "Across {papers} published papers, {short}'s work earned {award}."],
        ],
        "questions": [
            ("what", "field", ["What kind of scientist was {name}?"]),
            ("where", "university", ["Where did {name} teach?"]),
            ("what", "discovery", ["What did {name} discover in {year}?"]),
            ("when", "year", ["When did {short} make the discovery?", "When did {name} make the discovery?"]),
            ("who", "collaborator", ["Who worked alongside {name} on the discovery?"]),
            ("why", "reason", ["Why did {short}'s finding surprise colleagues?"]),
            ("how many", "papers", ["How many papers did {name} publish?"]),
            ("which", "award", ["Which honour did {name} receive?", "Which award was given to {name}?"]),
        ],
    },
    "company": {
        "title": "name",
        "fields": ("name", "year", "founders", "hq", "product", "employees", "reason", "rival"),
        "rows": [
            ("Harlow & Finch", "1897", "the cousins Edwin Harlow and June Finch", "Harlmouth",
             "bicycles and tandem frames", "1,250", "its frames were light enough for a child to lift",
             "Castor Cycle Works"),
            ("Bellweather Biscuits", "1908", "the baker Nora Bellweather", "Milden Cross", "oat biscuits in tins",
             "640", "the tins kept the biscuits fresh for a whole winter", "Pelham Bakeries"),
            ("Cinder Lane Ironworks", "1851", "the brothers Amos and Silas Pratt", "Carrow", "cast-iron stoves",
             "3,100", "its stoves burned half as much coal as older models", "the Vessa Foundry"),
            ("Lumen Glassworks", "1874", "the chemist Ottilie Brass", "Vessa", "lamp chimneys and lenses",
             "880", "its lenses were clear enough for lighthouses", "Starling Optical"),
            ("Northstar Telegraph Company", "1866", "a group of Quillhaven shipowners", "Quillhaven",
             "undersea telegraph cable", "2,400", "merchants wanted news of prices before their cargoes arrived",
             "the Sennet Cable Company"),
            ("Dovecote Mills", "1792", "the widow Hester Ambrose", "Bramblewick", "woollen blankets", "510",
             "the army bought its blankets throughout a long war", "Kersey Woollens"),
            ("Pellmark", "1829", "the merchant family of Osric Dane", "Saltreach", "table salt and brine",
             "430", "it was the first to sell salt in sealed paper packets", "Marsh Crystal"),
        ],
        "sentences": [
            ["{name} was founded in {year} by {founders}.",
             "The firm {name} was started in {year} by {founders}."],
            ["From its headquarters in {hq} it makes {product}.",
             "It is based in {hq}, where it makes {product}."],
            ["The company now employs {employees} people.", "Some {employees} people work for it today."],
            ["It grew quickly because {reason}.", "Its early growth came because {reason}."],
            ["Its main rival is {rival}.", "Its fiercest competitor has always been {rival}."],
        ],
        "questions": [
            ("when", "year", ["When was {name} founded?"]),
            ("who", "founders", ["Who founded {name}?", "Who started {name}?"]),
            ("where", "hq", ["Where is {name} based?", "Where are the headquarters of {name}?"]),
            ("what", "product", ["What does {name} make?"]),
            ("how many", "employees", ["How many people does {name} employ?"]),
            ("why", "reason", ["Why did {name} grow quickly?"]),
            ("which", "rival", ["Which company is the main rival of {name}?"]),
        ],
    },
    "event": {
        "title": "name",
        "fields": ("name", "year", "place", "leader", "participants", "cause", "duration", "symbol", "outcome"),
        "rows": [
            ("Lantern Strike", "1872", "Quillhaven", "the lamplighter Dora Keele", "600",
             "the town cut the lamplighters' pay by a third", "eleven days", "an unlit lantern",
             "the town restored the old wages"),
            ("Toll Gate Protest", "1834", "Milden Cross", "the carter Samuel Oakes", "1,400",
             "a new toll doubled the price of crossing the Wend", "three weeks", "an empty cart wheel",
             "the council abolished the toll"),
            ("Salt Sack Boycott", "1790", "Saltreach", "the fishwife Bella Corrigan", "2,000",
             "a new tax was put on every sack of salt", "five months", "a wooden salt scoop",
             "the tax was repealed the following spring"),
            ("Night Rate Lockout", "1891", "Carrow", "the union secretary Frieda Holm", "3,500",
             "the owners refused to pay extra for night shifts", "six weeks", "a docker's hook",
             "the owners agreed to a night rate"),
            ("Common Spring Dispute", "1611", "Torrowby", "the abbess Hild Varrow", "300",
             "the abbey tried to charge for water from the spring", "two years", "a pewter cup",
             "the spring was declared common property"),
            ("Gale Night Rescue", "1857", "Harlmouth", "the coxswain Ned Pascoe", "45",
             "an emigrant ship ran aground in a gale", "nineteen hours", "a knotted rope",
             "every passenger was brought ashore alive"),
            ("Sunday Press Walkout", "1903", "Vessa", "the typesetter Aurelio Dinis", "820",
             "the owners planned to run the presses on Sundays", "nine days", "a broken composing stick",
             "Sunday printing was dropped"),
        ],
        "sentences": [
            ["The {name} took place in {place} in {year}.", "In {year}, {place} saw the {name}."],
            ["It began because {cause}.", "The trouble started because {cause}."],
            ["Led by {leader}, about {participants} people took part, and it lasted {duration}.",
             "Some {participants} people took part under {leader}, and it went on for {duration}."],
            ["Supporters carried {symbol}, which became its emblem.",
             "Its emblem was {symbol}, carried by many who joined."],
            ["In the end {outcome}.", "It ended when {outcome}."],
        ],
        "questions": [
            ("where", "place", ["Where did the {name} take place?"]),
            ("when", "year", ["When did the {name} happen?", "When did the {name} take place?"]),
            ("who", "leader", ["Who led the {name}?"]),
            ("how many", "participants", ["How many people took part in the {name}?"]),
            ("why", "cause", ["Why did the {name} begin?"]),
            ("which", "symbol", ["Which object became the emblem of the {name}?"]),
            ("what", "outcome", ["What was the outcome of the {name}?"]),
        ],
    },
    "bridge": {
        "title": "name",
        "fields": ("name", "river", "place", "engineer", "year", "material", "piers", "reason"),
        "rows": [
            ("Kingfisher Bridge", "Ostwater", "Harlmouth", "Rosamund Teal", "1788", "grey granite", "7",
             "the ferry could no longer carry the growing wool trade"),
            ("Hollin Viaduct", "Wend", "Aldermouth", "Thaddeus Morrow", "1859", "red brick", "21",
             "the railway had to cross the valley without steep gradients"),
            ("Old Mill Bridge", "Brisk", "Kestlemoor", "the millwright Lucan Threlfall", "1792",
             "oak timbers on stone footings", "3", "carts loaded with grain sank in the muddy ford"),
            ("Swallow Chain Bridge", "Sable", "Ferndell", "Ingeborg Lund", "1826", "wrought-iron chains", "2",
             "floods swept away every wooden bridge built before it"),
            ("Primrose Footbridge", "Lissom", "Quillhaven", "Perpetua Hale", "1901", "a steel lattice", "4",
             "children had to walk two miles round to reach the school"),
            ("Abbot's Packhorse Bridge", "Caddle", "Torrowby", "the monks of Torrowby Abbey", "1560",
             "rough moorland stone", "5", "pilgrims drowned trying to wade across in winter"),
            ("Heron Swing Bridge", "Tamberlane", "Vessa", "Oskar Brandt", "1894", "steel and oak", "6",
             "tall ships needed to reach the upper docks"),
        ],
        "sentences": [
            ["The {name} crosses the {river} at {place}.", "At {place}, the {name} spans the {river}."],
            ["Designed by {engineer}, it opened in {year}.", "It was the work of {engineer} and opened in {year}."],
            ["It is built of {material} and rests on {piers} piers.",
             "Made of {material}, it stands on {piers} piers."],
            ["It was needed because {reason}.", "The town wanted it because {reason}."],
        ],
        "questions": [
            ("which", "river", ["Which river does the {name} cross?"]),
            ("where", "place", ["Where does the {name} cross the {river}?"]),
            ("who", "engineer", ["Who designed the {name}?"]),
            ("when", "year", ["When did the {name} open?"]),
            ("what", "material", ["What is the {name} built of?"]),
            ("how many", "piers", ["How many piers support the {name}?"]),
            ("why", "reason", ["Why was the {name} needed?"]),
        ],
    },
}


def render(template: str, facts: dict, spans: dict, offset: int) -> str:
    """Fill `template` from `facts`, recording in `spans` where each field's value first lands in the context."""
    pieces, position, last = [], offset, 0
    for match in FIELD.finditer(template):
        literal = template[last:match.start()]
        value = facts[match.group(1)]
        pieces += [literal, value]
        spans.setdefault(match.group(1), position + len(literal))
        position += len(literal) + len(value)
        last = match.end()
    pieces.append(template[last:])
    return "".join(pieces)


def entity_rows(category: dict, facts: dict, rng: random.Random, split: str) -> list[dict]:
    spans, sentences, length = {}, [], 0
    for wordings in category["sentences"]:
        sentence = render(rng.choice(wordings), facts, spans, length + (1 if sentences else 0))
        assert sentence[0].isupper(), sentence
        length += len(sentence) + (1 if sentences else 0)
        sentences.append(sentence)
    context = " ".join(sentences)
    title = facts[category["title"]]
    rows = []
    for kind, field, wordings in category["questions"]:
        question = rng.choice(wordings).format(**facts)
        question = question.format(**facts)  # fate_q itself holds {name}
        answer, start = facts[field], spans[field]
        assert context[start:start + len(answer)] == answer, (title, field)
        assert answer.lower() not in question.lower(), (title, question)
        texts, starts = [answer], [start]
        role = ROLE_THEN_NAME.match(answer)
        if split == "validation" and role:
            texts.append(answer[role.end():])
            starts.append(start + role.end())
        rows.append({
            "id": hashlib.sha1(f"{split}/{title}/{question}".encode()).hexdigest()[:24],
            "title": title, "context": context, "question": question,
            "answers": {"text": texts, "answer_start": starts},
            "_type": kind,
        })
    return rows


def sample_splits() -> dict[str, list[dict]]:
    """The shipped sample's rows by split: whole entities held out for validation, the order fixed by SEED."""
    rng = random.Random(SEED)
    entities = {"train": [], "validation": []}
    for name, category in CATEGORIES.items():
        facts = [dict(zip(category["fields"], row, strict=True)) for row in category["rows"]]
        held_out = set(rng.sample(range(len(facts)), VALIDATION_ENTITIES_PER_CATEGORY))
        for number, entity in enumerate(facts):
            entities["validation" if number in held_out else "train"].append((category, entity))
    splits = {}
    for split, chosen in entities.items():
        rng.shuffle(chosen)
        splits[split] = [row for category, facts in chosen for row in entity_rows(category, facts, rng, split)]
    return splits
