"""Domain 2, encyclopedia entries about made-up towns, rivers, birds and inventors.

Each kind of entry is a few sections of sentence templates; the slots (names, years, distances...) are
drawn once per page, so an entry is consistent with itself. Some entries end with a reading list whose
ISBN looks like a bare 10-digit phone number: a trap for the PII masker.
"""

from __future__ import annotations

import random

from course_lib.crawl.blocks import Block, made_up_name, sentences_to_paragraphs

DIRECTIONS = ["north", "south", "east", "west", "north-east", "south-west"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# Entry templates: sections of sentences with {slots}, some of which are left out on each page.
TOWN = {
    "History": [
        "{name} was first mentioned in a charter of {y1}, when it was a hamlet of a few farms.",
        "The town grew quickly after a bridge over the {river} was built in {y2}.",
        "During the {century} century it was known for its {craft} workshops, some of which still exist.",
        "A large fire destroyed most of the wooden houses in {y3}, and the centre was rebuilt in stone.",
        "The old {building} at the heart of the town dates from {y2} and was restored in {y4}.",
    ],
    "Geography": [
        "{name} lies on the {side} bank of the {river} river, about {km} kilometres {direction} of {city}.",
        "The land around the town is mostly {land}, with a few small lakes to the {direction2}.",
        "The climate is mild, and most of the rain falls between {month1} and {month2}.",
        "The highest point of the area is {hill} Hill, which rises to {height} metres.",
    ],
    "Economy and culture": [
        "The population was {pop} at the census of {y4}.",
        "Its economy was long based on {industry}, but today many residents work in {modern}.",
        "A weekly market is held in the main square every {weekday}.",
        "Every {season}, the town hosts a festival of {festival} that draws visitors from the whole region.",
        "The town has a primary school, a small library and a railway station on the line to {city2}.",
        "The local football club, {name} {club}, plays in the {division} division.",
    ],
}
RIVER = {
    "Course": [
        "The {name} is a river of about {km} kilometres that rises in the {land} hills near {city}.",
        "It flows mostly to the {direction} and joins the {river} at the village of {village}.",
        "Along its middle course the valley is narrow, and there are several old water mills.",
        "The river is fed by {n} small streams, the largest of which is the {stream} Brook.",
    ],
    "Nature": [
        "Its clean water is home to trout, grayling and a small population of otters.",
        "Kingfishers and grey herons can often be seen along the banks in {season}.",
        "Parts of the valley have been a nature reserve since {y3}.",
    ],
    "History": [
        "A stone bridge was built across the {name} at {village} in {y1}.",
        "In the {century} century the river powered {n2} mills that ground grain and made paper.",
        "A great flood in {y2} damaged many houses, and new dikes were built over the following years.",
        "The name of the river probably comes from an old word meaning {meaning}.",
    ],
}
BIRD = {
    "Description": [
        "The {colour} {bird} is a small songbird found in the {land} country of the {direction} region.",
        "Adults are about {cm} centimetres long and weigh around {g} grams.",
        "The male has a {colour} breast and a {colour2} crown, while the female is duller.",
        "Its song is a series of short, clear notes that rise at the end.",
    ],
    "Behaviour": [
        "It feeds mainly on insects in summer and on seeds and berries in winter.",
        "Pairs build a cup-shaped nest of moss and grass low in a hedge or bush.",
        "The female lays {eggs} eggs in {month1}, and both parents feed the young.",
        "In cold winters many birds move to gardens, where they visit feeders.",
    ],
    "Status": [
        "The species is common and its numbers have been stable since counts began in {y3}.",
        "It was first described by the naturalist {person} in {y1}.",
        "Local people call it the {nickname}, because it often sings from the top of {perch}.",
    ],
}
INVENTOR = {
    "Early life": [
        "{person} ({y1} to {y5}) was an engineer and inventor from {city}.",
        "{pronoun} was the {nth} of {n} children of a {trade} and grew up near the {river}.",
        "As a child {pronoun_l} liked to take apart clocks and build small machines from wood.",
        "{pronoun} studied mechanics at the technical school of {city2} and graduated in {y2}.",
    ],
    "Work": [
        "{pronoun} is best known for an improved {device}, patented in {y3}.",
        "The design used a {part} to make the machine quieter and easier to repair.",
        "Within ten years the {device} was used in {n2} workshops across the country.",
        "{pronoun} also wrote a short book on {topic}, which was read by many apprentices.",
    ],
    "Legacy": [
        "A street in {city} is named after {pronoun_o}, and a small museum shows {pronoun_p} early models.",
        "Historians describe {pronoun_o} as a careful and patient builder rather than a great theorist.",
    ],
}
ENTRY_KINDS = {"town": TOWN, "river": RIVER, "bird": BIRD, "inventor": INVENTOR}


def _encyclopedia_slots(rng: random.Random, name: str) -> dict:
    """A value for every slot of every template, drawn once so that the entry agrees with itself."""
    female = rng.random() < 0.5
    y1 = rng.randint(1100, 1850)
    return {
        "name": name, "river": made_up_name(rng), "city": made_up_name(rng), "city2": made_up_name(rng),
        "village": made_up_name(rng), "hill": made_up_name(rng), "stream": made_up_name(rng),
        "y1": y1, "y2": y1 + rng.randint(5, 60), "y3": y1 + rng.randint(61, 120), "y4": rng.randint(1950, 2020),
        "y5": y1 + rng.randint(50, 90), "century": rng.choice(["15th", "16th", "17th", "18th", "19th"]),
        "craft": rng.choice(["pottery", "weaving", "clock", "glass", "leather", "rope"]),
        "building": rng.choice(["church", "town hall", "mill", "granary", "customs house"]),
        "side": rng.choice(["left", "right"]), "km": rng.randint(8, 140), "direction": rng.choice(DIRECTIONS),
        "direction2": rng.choice(DIRECTIONS), "land": rng.choice(["flat", "hilly", "wooded", "marshy", "rocky"]),
        "month1": rng.choice(MONTHS[:6]), "month2": rng.choice(MONTHS[6:]), "height": rng.randint(180, 900),
        "pop": f"{rng.randint(900, 48000):,}", "industry": rng.choice(["farming", "fishing", "mining", "timber", "wool"]),
        "modern": rng.choice(["tourism", "services", "small factories", "the nearby city", "health care"]),
        "weekday": rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]),
        "season": rng.choice(["spring", "summer", "autumn", "winter"]),
        "festival": rng.choice(["music", "lanterns", "old crafts", "cheese", "kites", "boats"]),
        "club": rng.choice(["United", "Rovers", "Athletic", "Town", "Wanderers"]),
        "division": rng.choice(["fourth", "fifth", "sixth", "regional"]), "n": rng.randint(3, 12),
        "n2": rng.randint(12, 300), "meaning": rng.choice(["slow water", "bright stream", "the bend", "alder tree"]),
        "colour": rng.choice(["grey", "brown", "yellow", "red", "blue", "olive"]),
        "colour2": rng.choice(["black", "white", "chestnut", "green"]),
        "bird": rng.choice(["warbler", "finch", "chat", "bunting", "wren", "pipit"]),
        "cm": rng.randint(9, 18), "g": rng.randint(8, 30), "eggs": f"{rng.randint(3, 6)} to {rng.randint(7, 9)}",
        "person": f"{rng.choice(['Ada', 'Otto', 'Mira', 'Karl', 'Ines', 'Paul', 'Vera', 'Emil'])} {made_up_name(rng)}",
        "nickname": rng.choice(["hedge singer", "morning bell", "little parson", "roof whistler"]),
        "perch": rng.choice(["chimneys", "fence posts", "church towers", "tall reeds"]),
        "pronoun": "She" if female else "He", "pronoun_l": "she" if female else "he",
        "pronoun_o": "her" if female else "him", "pronoun_p": "her" if female else "his",
        "nth": rng.choice(["first", "second", "third", "youngest"]),
        "trade": rng.choice(["baker", "blacksmith", "teacher", "carpenter", "miller"]),
        "device": rng.choice(["loom", "water pump", "printing press", "lock", "sewing machine", "plough"]),
        "part": rng.choice(["spring", "gear train", "brass valve", "cam", "counterweight"]),
        "topic": rng.choice(["gears", "the care of machines", "drawing plans", "measuring tools"]),
    }


def encyclopedia_blocks(rng: random.Random) -> list[Block]:
    """An entry of a random kind: its name, then each section's heading and about 80% of its sentences."""
    kind = rng.choice(list(ENTRY_KINDS))
    name = made_up_name(rng, rng.choice([2, 2, 3]))
    slots = _encyclopedia_slots(rng, name)
    if kind == "inventor":
        name = slots["person"]
    blocks: list[Block] = [("h1", name)]
    for section, templates in ENTRY_KINDS[kind].items():
        chosen = [t for t in templates if rng.random() < 0.8] or templates[:1]
        blocks.append(("h2", section))
        sentences = [t.format(**slots) for t in chosen]
        blocks += [("p", p) for p in sentences_to_paragraphs(rng, sentences)]
    if rng.random() < 0.08:  # a trap for the PII masker: an ISBN looks like a bare 10-digit phone number
        isbn = "".join(str(rng.randint(0, 9)) for _ in range(10))
        blocks.append(("p", f"Further reading: {slots['person']}, A history of the region (ISBN {isbn}), {slots['y4']}."))
    return blocks
