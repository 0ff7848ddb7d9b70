"""A small labeled "web crawl": raw HTML pages with the ground truth a cleaning pipeline is judged against.

Common Crawl gives you bytes and a URL; nobody tells you which pages are spam. Here every page is made by
us, so we know: each record carries its URL, its raw HTML bytes and labels saying what is wrong with it.

A page is drawn in three steps, each from its own seeded `random.Random`:
  1. what it is: a site type (`domain`) and a defect (or none) with the shares in DEFECT_SHARES;
  2. its main content, as a list of blocks (heading, paragraph, list item, code): a story from
     `course_lib.stories`, or an encyclopedia entry, a forum thread, a code snippet written here;
  3. the page around it: nav, cookie banner, ads, footer, scripts and styles, sometimes broken HTML or an
     unusual encoding (`quirks`), which a good extractor must survive without losing the content.

Defects (exactly one per bad page): boilerplate-only pages, keyword spam, gibberish, other languages and
scripts, toxic content (made-up placeholder words stand in for real slurs), exact and near duplicates of
an earlier page, low quality (too short, all caps, lorem ipsum, mostly bullets), and payloads that are not
text at all. PII (emails, phone numbers, IPv4 addresses) is not a defect: it should be masked, not dropped,
so it is listed per page in `pii`. A few good pages carry traps (an ISBN that looks like a phone number, a
moderator quoting a blocked word) so that every filter has something to get wrong.

Determinism: every random choice comes from `random.Random(f"crawl/{seed}/{index}/{purpose}")`. Seeding with
a string hashes it with SHA-512, so the same seed gives the same crawl on every platform and Python version;
no global random state is touched.
"""

from __future__ import annotations

import html
import random
import re
import string
from dataclasses import dataclass

DOMAINS = {"stories": 0.50, "encyclopedia": 0.20, "forum": 0.20, "code": 0.10}
DEFECT_SHARES = {
    "boilerplate": 0.04,  # chrome only, no content ("Please enable JavaScript")
    "spam": 0.05,  # SEO articles, keyword stuffing, repeated lines, link farms
    "gibberish": 0.03,  # random letters, keyboard mashing, word salad
    "foreign": 0.06,  # other languages and scripts
    "toxic": 0.04,  # placeholder insults
    "low_quality": 0.08,  # too short, all caps, lorem ipsum, mostly bullets
    "exact_dup": 0.06,  # the same content as an earlier page, at another URL
    "near_dup": 0.06,  # an earlier page with small edits
    "not_text": 0.01,  # empty responses and binary files
}
DEFECTS = tuple(DEFECT_SHARES)
PII_SHARE = 0.15  # share of good encyclopedia/forum/code pages that contain PII
BROKEN_HTML_SHARE = 0.10
ODD_ENCODING_SHARE = 0.08
DUP_WINDOW = 400  # a duplicate copies a page at most this many records earlier

# Made-up placeholder words standing in for a real blocklist (they mean nothing in any language).
BLOCKLIST = ("zorbflax", "blentwit", "skrumbo", "vexnard", "quibbort", "drazzlewomp", "flonkus", "mubwert")
PII_KINDS = ("email", "phone", "ip")


@dataclass(frozen=True)
class CrawlRecord:
    """One crawled page and its ground truth.

    `defect` is "" for a good page, else one of DEFECTS (`detail` says more: "caps", "fr", ...).
    `text` is the page's main content as a perfect extractor would return it: one line per block,
    whitespace collapsed. `pii` lists every (kind, value) planted in the text. `dup_of` is the index of
    the original page for exact and near duplicates. `quirks` lists what the HTML does to make extraction
    harder ("broken_html", "encoding:cp1252", ...).
    """

    index: int
    url: str
    html: bytes
    domain: str
    defect: str = ""
    detail: str = ""
    text: str = ""
    lang: str = "en"
    pii: tuple[tuple[str, str], ...] = ()
    dup_of: int | None = None
    quirks: tuple[str, ...] = ()
    traps: tuple[str, ...] = ()

    @property
    def is_good(self) -> bool:
        return self.defect == ""

    @property
    def labels(self) -> frozenset[str]:
        """Everything true of the page: its defect, "pii" if it has any, and its quirks."""
        found = {self.defect} if self.defect else set()
        return frozenset(found | ({"pii"} if self.pii else set()) | set(self.quirks))


def _rng(seed: int, index: int, purpose: str) -> random.Random:
    return random.Random(f"crawl/{seed}/{index}/{purpose}")


def _pick_share(rng: random.Random, shares: dict[str, float], rest: str | None = None) -> str:
    """A key of `shares` drawn with its probability; `rest` takes whatever probability is left."""
    u, total = rng.random(), 0.0
    for key, share in shares.items():
        total += share
        if u < total:
            return key
    return rest if rest is not None else key


# ----------------------------------------------------------------------------------------------------
# Content is a list of blocks (tag, text). One list renders to both the HTML and the true main text.

Block = tuple[str, str]  # ("h1" | "h2" | "p" | "li" | "pre", text)


def blocks_to_text(blocks: list[Block]) -> str:
    """What a perfect extractor returns: one line per block (a code block gives one line per code line)."""
    lines = []
    for tag, text in blocks:
        for line in text.split("\n") if tag == "pre" else [text]:
            line = " ".join(line.split())
            if line:
                lines.append(line)
    return "\n".join(lines)


def blocks_to_html(blocks: list[Block]) -> str:
    out = []
    for tag, text in blocks:
        if tag == "pre":
            out.append(f"<pre><code>{html.escape(text, quote=False)}</code></pre>")
        elif tag == "li":
            out.append(f"<ul><li>{html.escape(text, quote=False)}</li></ul>")
        else:
            out.append(f"<{tag}>{html.escape(text, quote=False)}</{tag}>")
    return "\n".join(out)


def _sentences_to_paragraphs(rng: random.Random, sentences: list[str], low: int = 2, high: int = 4) -> list[str]:
    paragraphs = []
    while sentences:
        k = rng.randint(low, high)
        paragraphs.append(" ".join(sentences[:k]))
        sentences = sentences[k:]
    return paragraphs


# ----------------------------------------------------------------------------------------------------
# Domain 1: stories, from the course's story corpus.

def story_blocks(index: int, seed: int) -> list[Block]:
    from course_lib import stories  # imported here so the rest of the crawl works without it

    story = stories.story("train", index, seed)
    paragraphs = [" ".join(p.split()) for p in story.text.split("\n") if p.strip()]
    hero, thing = story.facts.get("hero", {}).get("name"), story.facts.get("thing")
    title = f"{hero} and the {story.facts.get('colour', '')} {thing}" if hero and thing else f"A story about {hero or 'a friend'}"
    return [("h1", " ".join(title.split()))] + [("p", p) for p in paragraphs]


# ----------------------------------------------------------------------------------------------------
# Domain 2: encyclopedia entries about made-up towns, rivers, birds and inventors.

SYLLABLES = ("bram holt quen ford ash wick mor dale ley thorn brook fen stead wyn cal ver ton mere gate "
             "hal sted lin kirk ow el ber ros nor vel tarn by").split()
DIRECTIONS = ["north", "south", "east", "west", "north-east", "south-west"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def made_up_name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


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
        blocks += [("p", p) for p in _sentences_to_paragraphs(rng, sentences)]
    if rng.random() < 0.08:  # a trap for the PII masker: an ISBN looks like a bare 10-digit phone number
        isbn = "".join(str(rng.randint(0, 9)) for _ in range(10))
        blocks.append(("p", f"Further reading: {slots['person']}, A history of the region (ISBN {isbn}), {slots['y4']}."))
    return blocks


# ----------------------------------------------------------------------------------------------------
# Domain 3: forum threads (a question, then replies).

FORUM_TOPICS = {
    "gardening": {
        "task": ["grow tomatoes on a balcony", "start a compost heap", "keep slugs off my lettuce",
                 "grow peppers from seed", "prune an old apple tree", "get my roses to flower again"],
        "thing": ["tomato plants", "compost heap", "seedlings", "raised bed", "apple tree", "roses", "herb pots"],
        "problem": ["The leaves turn yellow from the bottom up.", "Nothing seems to happen for weeks.",
                    "The young plants fall over after a few days.", "The soil stays wet and smells bad.",
                    "Something eats holes in the leaves every night.", "The flowers drop before any fruit sets."],
        "fix": ["water less often but more deeply", "add a layer of dry leaves", "move the pots into full sun",
                "mix some sand into the soil", "put copper tape around the bed", "feed them with seaweed every fortnight"],
        "check": ["the pots have holes in the bottom", "the plants get at least six hours of sun",
                  "you are not using too much fertiliser", "the roots have enough room"],
    },
    "cycling": {
        "task": ["stop my chain from slipping", "adjust the rear brakes", "fix a slow puncture",
                 "set the saddle height", "clean the gears after a wet ride", "true a wobbly wheel"],
        "thing": ["chain", "rear brake", "inner tube", "saddle", "derailleur", "back wheel", "old road bike"],
        "problem": ["It makes a clicking noise when I pedal hard.", "The wheel still rubs after every ride.",
                    "The tyre goes flat again after two days.", "My knees hurt after twenty minutes.",
                    "The gears jump when I climb a hill.", "The brake lever almost touches the handlebar."],
        "fix": ["replace the chain and the cassette together", "turn the barrel adjuster half a turn",
                "check the inside of the tyre for a small thorn", "raise the saddle by a few millimetres",
                "tighten the spokes a quarter turn at a time", "bleed the brakes properly"],
        "check": ["the wheel is seated straight in the frame", "the cable is not frayed",
                  "the tyre pressure matches the number on the sidewall", "the chain is not stretched"],
    },
    "baking": {
        "task": ["get a better rise on my bread", "keep a sourdough starter alive", "bake thin crispy cookies",
                 "stop my cakes from sinking", "make pizza dough by hand", "get a shiny crust on rolls"],
        "thing": ["bread", "sourdough starter", "cookies", "sponge cake", "pizza dough", "bread rolls", "oven"],
        "problem": ["The loaf comes out flat and dense.", "It smells sour but does not bubble.",
                    "They spread into one big sheet on the tray.", "The middle collapses as it cools.",
                    "The dough tears when I stretch it.", "The crust stays pale and soft."],
        "fix": ["let the dough rest longer in a warm place", "feed it twice a day with equal weights of flour and water",
                "chill the dough for an hour before baking", "lower the oven temperature a little",
                "use a stronger flour with more protein", "brush the tops with beaten egg"],
        "check": ["your yeast is still fresh", "you weigh the flour instead of using cups",
                  "the oven really reaches the temperature on the dial", "the kitchen is not too cold"],
    },
    "aquariums": {
        "task": ["keep the water clear", "cycle a new tank", "choose fish for a small tank",
                 "get rid of algae on the glass", "lower the nitrate level", "keep shrimp alive"],
        "thing": ["tank", "filter", "water", "plants", "heater", "shrimp", "guppies"],
        "problem": ["The water turns cloudy a day after a change.", "The fish hide all day and stop eating.",
                    "Green spots come back on the glass every week.", "The test strip shows high nitrate.",
                    "Two of the shrimp died after the last water change.", "The plants melt away within a month."],
        "fix": ["change a quarter of the water every week", "rinse the filter sponge in old tank water",
                "leave the light on for fewer hours", "add more fast growing plants",
                "drip new water in slowly over an hour", "feed only every second day"],
        "check": ["you are not feeding too much", "the filter runs all the time",
                  "the new water has the same temperature as the tank", "the tap water is treated first"],
    },
    "home network": {
        "task": ["get better wifi upstairs", "set up a printer on the network", "make the router reboot less",
                 "share files between two laptops", "find out why the connection drops", "set up a guest network"],
        "thing": ["router", "printer", "wifi", "laptop", "modem", "repeater", "smart TV"],
        "problem": ["The signal drops every evening around eight.", "The printer shows up and then vanishes.",
                    "Videos stop to buffer every few minutes.", "One laptop can see the other but not its files.",
                    "The router restarts on its own twice a day.", "Guests can see all my devices."],
        "fix": ["move the router away from the microwave", "give the printer a fixed address in the router settings",
                "switch to a less crowded channel", "update the firmware of the router",
                "put a mesh point on the landing", "turn on client isolation for the guest network"],
        "check": ["the cables are plugged in firmly", "both machines are in the same workgroup",
                  "nothing else on the network is downloading at the time", "the power supply is the original one"],
    },
}
USERNAMES = ["green_thumb", "ollie_k", "mara77", "breadhead", "fishkeeper", "spokes", "tinkerer", "nina_b",
             "old_rob", "quietfox", "pixel_pete", "sunnyside", "marek", "juniper", "hal9", "lottie"]

QUESTION_OPENERS = ["Hi all, I have been trying to {task} for {weeks} weeks and I keep running into the same problem.",
                    "Hello everyone, first post here, I want to {task} but it does not work out.",
                    "Quick question for the experts: how do you {task}?",
                    "I am new to this and would like to {task}, but I am stuck.",
                    "For a while now I have been trying to {task}, without much luck."]
QUESTION_CLOSERS = ["Has anyone here dealt with this before? Any advice would be welcome.",
                    "What am I doing wrong?", "Thanks in advance for any tips.",
                    "I read a few guides but they all say different things, so I am a bit lost.",
                    "Any ideas? I am running out of things to try."]
REPLY_OPENERS = ["I had the same trouble with my {thing} last {when}", "Same here with my {thing}",
                 "This happened to my {thing} too, back in {when2}", "We had this with our {thing} a while ago",
                 "My {thing} did exactly this", "Oh, I know this one from my own {thing}"]
REPLY_FIXES = [", and what worked for me was to {fix}.", ". In the end I decided to {fix}.",
               ", so I tried to {fix} and that helped.", ". The trick for me was to {fix}.",
               ". After a lot of reading I chose to {fix}, which solved it."]
REPLY_CHECKS = ["First make sure that {check}.", "Check that {check}, it is the most common cause.",
                "Before anything else, see whether {check}.", "It is worth making sure {check}."]
REPLY_EXTRAS = ["It took about {days} days before I saw any difference.", "Give it a week or two before you judge.",
                "Post a photo if you can, it helps a lot.", "Good luck, and tell us how it goes!",
                "Do not change everything at once or you will not know what helped.",
                "Honestly, most people get this wrong at first.", "I learned this the hard way, so I hope it saves you some time.",
                "My neighbour swears by the same method.", "Keep notes, it really helps to see what changed.",
                "There is a long thread about this from {when2} if you search for it.",
                "You could also ask at the local shop, they were very helpful to me.",
                "I would not spend money on new parts before trying this."]
THANKS = ["Thanks everyone, I tried the first suggestion and it is much better now.",
          "Thank you, that was it! I feel a bit silly now.",
          "Update: after a week it works as it should. Thanks for the help.",
          "Thanks, I will try this at the weekend and report back."]
MODERATOR_NOTE = "Reminder from the moderators: words like {word} are not welcome here, so please keep the thread friendly."


def forum_blocks(rng: random.Random) -> list[Block]:
    topic = FORUM_TOPICS[rng.choice(list(FORUM_TOPICS))]
    task = rng.choice(topic["task"])
    question = [rng.choice(QUESTION_OPENERS).format(task=task, weeks=rng.randint(2, 9)), rng.choice(topic["problem"]),
                rng.choice(QUESTION_CLOSERS)]
    blocks: list[Block] = [("h1", f"How do I {task}?"), ("p", " ".join(question))]
    fixes, checks = rng.sample(topic["fix"], len(topic["fix"])), rng.sample(topic["check"], len(topic["check"]))
    # Every sentence pattern at most once per thread, so a thread does not repeat itself.
    openers, connectors = rng.sample(REPLY_OPENERS, 4), rng.sample(REPLY_FIXES, 4)
    check_patterns, extras = rng.sample(REPLY_CHECKS, 4), rng.sample(REPLY_EXTRAS, len(REPLY_EXTRAS))
    for _ in range(rng.randint(2, 4)):
        reply = [openers.pop() + connectors.pop()]
        if rng.random() < 0.5:
            reply.append(check_patterns.pop().format(check=checks.pop()))
        reply += [extras.pop() for _ in range(rng.randint(0, 2))]
        slots = {"thing": rng.choice(topic["thing"]), "fix": fixes.pop(), "days": rng.randint(3, 20),
                 "when": rng.choice(["year", "spring", "summer", "autumn", "winter", "month"]),
                 "when2": rng.randint(2009, 2023)}
        blocks.append(("p", " ".join(sentence.format(**slots) for sentence in reply)))
    if rng.random() < 0.5:
        blocks.append(("p", rng.choice(THANKS)))
    return blocks


# ----------------------------------------------------------------------------------------------------
# Domain 4: short programming tutorials with a code block.

CODE_TASKS = [
    ("count the words in a text file", "count_words", """def {f}(path):
    {v} = {{}}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            for word in line.split():
                {v}[word] = {v}.get(word, 0) + 1
    return {v}""", ["The dictionary {v} maps each word to the number of times we have seen it.",
                    "Opening the file with an explicit encoding avoids surprises on Windows.",
                    "Splitting on whitespace is crude: punctuation stays attached to the words.",
                    "For a real text you would lowercase the words first."]),
    ("find the duplicates in a list", "find_duplicates", """def {f}(items):
    seen = set()
    {v} = []
    for item in items:
        if item in seen and item not in {v}:
            {v}.append(item)
        seen.add(item)
    return {v}""", ["A set gives fast membership tests, which is why seen is a set and not a list.",
                    "Each duplicate is reported once, in the order it first repeats.",
                    "The items must be hashable, so this will not work for a list of lists.",
                    "The check against {v} is slow for long outputs; another set would fix that."]),
    ("compute a running average", "running_average", """def {f}(values):
    total = 0.0
    {v} = []
    for i, value in enumerate(values, start=1):
        total += value
        {v}.append(total / i)
    return {v}""", ["We keep a running total so that each step costs the same, however long the input is.",
                    "Starting enumerate at one saves us an addition inside the loop.",
                    "The first element of {v} is simply the first value.",
                    "For very long inputs the total can lose precision; math.fsum is an alternative."]),
    ("read the rows of a CSV file", "read_rows", """import csv

def {f}(path):
    with open(path, newline="") as handle:
        {v} = list(csv.DictReader(handle))
    return {v}""", ["DictReader uses the first line of the file as the column names.",
                    "Passing newline as an empty string is what the csv documentation asks for.",
                    "Every value comes back as a string, so convert numbers yourself.",
                    "For a huge file, loop over the reader instead of building a list."]),
    ("split a list into chunks", "chunked", """def {f}(items, size):
    {v} = []
    for start in range(0, len(items), size):
        {v}.append(items[start:start + size])
    return {v}""", ["The last chunk is shorter when the length is not a multiple of the size.",
                    "Slicing past the end of a list is safe in Python, so no special case is needed.",
                    "A size of zero would loop forever in some versions, so check it first.",
                    "Newer Python versions ship a similar tool called batched in itertools."]),
    ("merge two sorted lists", "merge_sorted", """def {f}(left, right):
    {v} = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            {v}.append(left[i]); i += 1
        else:
            {v}.append(right[j]); j += 1
    return {v} + left[i:] + right[j:]""", ["This is the merge step of merge sort, and it runs in linear time.",
                    "Using less than or equal keeps the merge stable.",
                    "Whatever is left in either list is already sorted, so we just append it.",
                    "The standard library has heapq.merge, which does the same lazily."]),
    ("group records by a key", "group_by", """def {f}(records, key):
    {v} = {{}}
    for record in records:
        {v}.setdefault(record[key], []).append(record)
    return {v}""", ["The method setdefault creates the empty list the first time a key shows up.",
                    "The groups keep the order in which the records arrived.",
                    "A defaultdict from the collections module reads a little more cleanly.",
                    "Unlike itertools.groupby, this does not need the records to be sorted."]),
]
CODE_OPENERS = ["This short example shows how to {task} in Python.", "Here is a small helper to {task}.",
                "A question that comes up a lot is how to {task}.", "I needed to {task} for {project} and wrote this.",
                "If you ever have to {task}, this snippet is a good start.",
                "Below is my version of a function to {task}."]
CODE_REMARKS = ["It uses only the standard library, so you can paste it into any script.",
                "There is nothing to install, it runs on any recent Python.",
                "I kept it short on purpose so it is easy to read.",
                "It is not the fastest way, but it is easy to follow.",
                "Feel free to copy it, no credit needed.", "Comments and better versions are welcome below."]
PROJECTS = ["a small project at work", "a school assignment", "a hobby project", "a data cleaning job",
            "a script that sorts my photos", "a tool for our club", "my thesis"]
CODE_OUTRO = ["The function {f} walks over the input once, so it stays fast even for large inputs.",
              "If you need this more than once, put it in a helper module and import it where you need it.",
              "You can test it quickly with a few values in the interactive shell before using it for real.",
              "A common mistake is to change the input while looping over it, which this version avoids.",
              "Add a docstring and a couple of tests before you rely on it.",
              "I have used {f} for {years} years now without problems."]


def code_blocks(rng: random.Random) -> list[Block]:
    task, name, template, notes = rng.choice(CODE_TASKS)
    slots = {"task": task, "f": rng.choice([name, name + "_fast", "my_" + name, name.split("_")[-1]]),
             "v": rng.choice(["result", "out", "acc", "found", "values_out", "collected"]),
             "project": rng.choice(PROJECTS), "years": rng.randint(2, 9)}
    intro = [rng.choice(CODE_OPENERS)] + rng.sample(CODE_REMARKS, rng.randint(1, 2))
    explain = rng.sample(notes, rng.randint(2, 3)) + rng.sample(CODE_OUTRO, rng.randint(1, 2))
    blocks: list[Block] = [("h1", f"How to {task} in Python"), ("p", " ".join(intro).format(**slots)),
                           ("pre", template.format(**slots)), ("p", " ".join(explain).format(**slots))]
    if rng.random() < 0.06:  # a trap for the PII masker: a four-part version number looks like an IPv4
        version = ".".join(str(rng.randint(0, 12)) for _ in range(4))
        blocks.append(("p", f"Tested with build {version} of the interpreter on my laptop."))
    return blocks


def content_blocks(domain: str, seed: int, index: int) -> list[Block]:
    """The main content of page `index` (the same for any page that copies it)."""
    if domain == "stories":
        return story_blocks(index, seed)
    rng = _rng(seed, index, "content")
    return {"encyclopedia": encyclopedia_blocks, "forum": forum_blocks, "code": code_blocks}[domain](rng)


# ----------------------------------------------------------------------------------------------------
# PII planted into good pages: values a masker should find, in the phone formats of reference-facts.

PHONE_FORMATS = ["{a}{b}{c}", "({a})-{b}-{c}", "({a}) {b} {c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}"]
EMAIL_HOSTS = ["mailbox.example", "post.example.org", "inbox.example.net", "webmail.example"]


def fake_email(rng: random.Random) -> str:
    first = rng.choice(["anna", "tom", "li", "marek", "sofia", "ravi", "jo", "kim"])
    sep = rng.choice([".", "_", ""])
    return f"{first}{sep}{made_up_name(rng).lower()}{rng.randint(1, 99)}@{rng.choice(EMAIL_HOSTS)}"


def fake_phone(rng: random.Random) -> str:
    parts = {"a": rng.randint(201, 989), "b": rng.randint(200, 999), "c": f"{rng.randint(0, 9999):04d}"}
    return rng.choice(PHONE_FORMATS).format(**parts)


def fake_ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


PII_SENTENCES = [
    ("email", "If you want the full notes, write to me at {value} and I will send them."),
    ("email", "Questions about this page can be sent to {value} at any time."),
    ("phone", "You can also call the office on {value} during the week."),
    ("phone", "My number is {value} if it is easier to talk it through."),
    ("ip", "The server at {value} kept refusing the connection until I restarted it."),
    ("ip", "Our log shows many requests from {value} in the last hour."),
]


def add_pii(rng: random.Random, blocks: list[Block]) -> tuple[list[Block], tuple[tuple[str, str], ...]]:
    """Append one to three sentences with PII to random paragraphs; return the blocks and what was planted."""
    blocks, planted = list(blocks), []
    paragraphs = [i for i, (tag, _) in enumerate(blocks) if tag == "p"]
    for _ in range(rng.randint(1, 3)):
        kind, sentence = rng.choice(PII_SENTENCES)
        value = {"email": fake_email, "phone": fake_phone, "ip": fake_ipv4}[kind](rng)
        i = rng.choice(paragraphs)
        blocks[i] = (blocks[i][0], blocks[i][1] + " " + sentence.format(value=value))
        planted.append((kind, value))
    return blocks, tuple(planted)


# ----------------------------------------------------------------------------------------------------
# Defective content.

SPAM_PHRASES = ["cheap watches", "best price", "buy now", "free shipping", "discount code", "replica bags",
                "casino bonus", "weight loss pills", "cheap flights", "top deals", "limited offer"]


SEO_SENTENCES = ["Looking for {k}? You have come to the right place.", "Our {k} are the best you can find online.",
                 "Everyone loves {k} because they are such great value.", "Order your {k} today and save money.",
                 "We have been selling {k} for over {n} years.", "Read the reviews of our {k} from happy customers.",
                 "Do not miss our special offers on {k} this week.", "With our {k} you will never be disappointed.",
                 "Compare our {k} with other shops and see the difference.", "Fast delivery of {k} to your door.",
                 "Thousands of people trust us for {k} every day.", "Sign up to hear first about new {k}."]


def spam_blocks(rng: random.Random) -> tuple[list[Block], str]:
    """Keyword spam, from blatant (repeated lines) to subtle (an "article" that repeats one phrase)."""
    keywords = rng.sample(SPAM_PHRASES, 3)
    style = rng.choice(["seo article", "stuffing", "repeated lines", "link farm"])
    title = " ".join(k.title() for k in keywords)
    if style == "seo article":
        sentences = [t.format(k=keywords[0], n=rng.randint(3, 30)) for t in rng.sample(SEO_SENTENCES, rng.randint(8, 11))]
        return [("h1", keywords[0].title())] + [("p", p) for p in _sentences_to_paragraphs(rng, sentences, 2, 4)], style
    if style == "stuffing":
        sentences = [f"{rng.choice(keywords).capitalize()} {rng.choice(keywords)} {rng.choice(keywords)}, "
                     f"{rng.choice(['the', 'best', 'buy', 'get'])} {rng.choice(keywords)} {rng.choice(keywords)}!"
                     for _ in range(rng.randint(15, 40))]
        return [("h1", title)] + [("p", p) for p in _sentences_to_paragraphs(rng, sentences, 3, 6)], style
    if style == "repeated lines":
        line = f"Get {keywords[0]} and {keywords[1]} today, {keywords[2]} for everyone!"
        return [("h1", title)] + [("p", line)] * rng.randint(8, 25), style
    items = [("li", f"{rng.choice(keywords)} {rng.choice(keywords)} {rng.randint(1, 99)}") for _ in range(rng.randint(20, 50))]
    return [("h1", title)] + items, style


WORD_SALAD = ("river window quickly seven under paper green although market softly engine pillow because "
              "orange thunder carefully basket mountain eleven whisper copper ladder maybe garden violin").split()


def gibberish_blocks(rng: random.Random) -> tuple[list[Block], str]:
    style = rng.choice(["random letters", "keyboard mash", "word salad"])
    sentences = []
    for _ in range(rng.randint(12, 30)):
        if style == "random letters":
            words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                     for _ in range(rng.randint(5, 12))]
        elif style == "keyboard mash":
            row = rng.choice(["qwertyuiop", "asdfghjkl", "zxcvbnm", "qazwsxedc"])
            words = ["".join(rng.choice(row) for _ in range(rng.randint(3, 8))) for _ in range(rng.randint(4, 10))]
        else:
            words = rng.sample(WORD_SALAD, rng.randint(6, 11))
        sentences.append(" ".join(words).capitalize() + ".")
    return [("p", p) for p in _sentences_to_paragraphs(rng, sentences, 3, 5)], style


FOREIGN = {
    "fr": ["Le petit village se trouve au bord de la rivière, entre les collines et la forêt.",
           "Chaque samedi, les habitants vont au marché pour acheter du pain et des légumes.",
           "Nous avons passé une semaine très agréable chez nos amis à la campagne.",
           "Il faut arroser les tomates le soir, quand il fait moins chaud.",
           "La bibliothèque municipale est ouverte du mardi au samedi.",
           "Mon frère travaille dans une boulangerie depuis trois ans.",
           "Après le déjeuner, nous sommes allés nous promener le long du canal.",
           "Le train pour Lyon part à huit heures et quart.",
           "Elle a trouvé une vieille clé sous la table de la cuisine.",
           "Les enfants jouent dans le jardin pendant que leurs parents préparent le dîner.",
           "Cette recette est simple et ne demande que quelques ingrédients.",
           "Je pense que nous devrions partir tôt demain matin."],
    "de": ["Das kleine Dorf liegt an einem Fluss zwischen den Hügeln und dem Wald.",
           "Jeden Samstag gehen die Leute auf den Markt, um Brot und Gemüse zu kaufen.",
           "Wir haben eine sehr schöne Woche bei unseren Freunden auf dem Land verbracht.",
           "Man sollte die Tomaten am Abend gießen, wenn es nicht mehr so heiß ist.",
           "Die Stadtbibliothek ist von Dienstag bis Samstag geöffnet.",
           "Mein Bruder arbeitet seit drei Jahren in einer Bäckerei.",
           "Nach dem Mittagessen sind wir am Kanal spazieren gegangen.",
           "Der Zug nach München fährt um Viertel nach acht ab.",
           "Sie hat einen alten Schlüssel unter dem Küchentisch gefunden.",
           "Die Kinder spielen im Garten, während die Eltern das Abendessen kochen.",
           "Dieses Rezept ist einfach und braucht nur wenige Zutaten.",
           "Ich glaube, wir sollten morgen früh losfahren."],
    "es": ["El pequeño pueblo está junto al río, entre las colinas y el bosque.",
           "Cada sábado la gente va al mercado para comprar pan y verduras.",
           "Pasamos una semana muy agradable en casa de nuestros amigos en el campo.",
           "Hay que regar los tomates por la tarde, cuando hace menos calor.",
           "La biblioteca municipal abre de martes a sábado.",
           "Mi hermano trabaja en una panadería desde hace tres años.",
           "Después de comer fuimos a pasear a lo largo del canal.",
           "El tren para Sevilla sale a las ocho y cuarto.",
           "Ella encontró una llave vieja debajo de la mesa de la cocina.",
           "Los niños juegan en el jardín mientras sus padres preparan la cena.",
           "Esta receta es fácil y solo necesita unos pocos ingredientes.",
           "Creo que deberíamos salir mañana temprano."],
    "ru": ["Маленькая деревня стоит на берегу реки, между холмами и лесом.",
           "Каждую субботу люди ходят на рынок за хлебом и овощами.",
           "Мы провели очень приятную неделю у наших друзей в деревне.",
           "Помидоры нужно поливать вечером, когда уже не так жарко.",
           "Городская библиотека открыта со вторника по субботу.",
           "Мой брат уже три года работает в пекарне.",
           "После обеда мы пошли гулять вдоль канала.",
           "Поезд в Москву отправляется в четверть девятого.",
           "Она нашла старый ключ под кухонным столом.",
           "Дети играют в саду, пока родители готовят ужин.",
           "Этот рецепт простой, и для него нужно всего несколько продуктов.",
           "Я думаю, нам нужно выехать завтра рано утром."],
    "el": ["Το μικρό χωριό βρίσκεται δίπλα στο ποτάμι, ανάμεσα στους λόφους και το δάσος.",
           "Κάθε Σάββατο οι άνθρωποι πηγαίνουν στην αγορά για ψωμί και λαχανικά.",
           "Περάσαμε μια πολύ ωραία εβδομάδα στο σπίτι των φίλων μας στην εξοχή.",
           "Πρέπει να ποτίζουμε τις ντομάτες το βράδυ, όταν κάνει λιγότερη ζέστη.",
           "Η δημοτική βιβλιοθήκη είναι ανοιχτή από την Τρίτη έως το Σάββατο.",
           "Ο αδελφός μου δουλεύει σε έναν φούρνο εδώ και τρία χρόνια.",
           "Μετά το μεσημεριανό πήγαμε βόλτα κατά μήκος του καναλιού.",
           "Το τρένο για τη Θεσσαλονίκη φεύγει στις οχτώ και τέταρτο.",
           "Βρήκε ένα παλιό κλειδί κάτω από το τραπέζι της κουζίνας.",
           "Τα παιδιά παίζουν στον κήπο ενώ οι γονείς ετοιμάζουν το δείπνο.",
           "Αυτή η συνταγή είναι απλή και χρειάζεται λίγα υλικά.",
           "Νομίζω ότι πρέπει να φύγουμε νωρίς αύριο το πρωί."],
}


def foreign_blocks(rng: random.Random) -> tuple[list[Block], str]:
    lang = rng.choice(list(FOREIGN))
    sentences = rng.sample(FOREIGN[lang], rng.randint(7, 12))
    blocks = [("h1", sentences[0].split(",")[0].rstrip("."))]
    return blocks + [("p", p) for p in _sentences_to_paragraphs(rng, sentences)], lang


INSULTS = [
    "You are a complete {w}, and everyone here knows it.",
    "What a {w} answer, did you even read the question?",
    "Only a {w} would post something this dumb.",
    "Go away, you {w}, nobody asked you.",
    "This whole thread is full of {w} people and {w2} ideas.",
]


def toxic_blocks(rng: random.Random, clean: list[Block]) -> tuple[list[Block], str]:
    """A thread that turns nasty: 1 to 6 placeholder insults spliced into a clean thread."""
    blocks, n = list(clean), rng.choice([1, 2, 2, 3, 3, 4, 5, 6])
    paragraphs = [i for i, (tag, _) in enumerate(blocks) if tag == "p"]
    used = 0
    while used < n:
        insult = rng.choice(INSULTS)
        words = {"w": rng.choice(BLOCKLIST), "w2": rng.choice(BLOCKLIST)}
        if "{w2}" in insult and used + 2 > n:
            continue
        i = rng.choice(paragraphs)
        blocks[i] = (blocks[i][0], blocks[i][1] + " " + insult.format(**words))
        used += 2 if "{w2}" in insult else 1
    return blocks, str(n)


LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
         "ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
         "fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
         "mollit anim id est laborum.")
SHORT_PAGES = ["Coming soon! We are working on this page.", "Thanks for visiting. More content will follow.",
               "Page under construction.", "Click here to continue.", "Nothing to see here yet, check back later!"]
BULLET_ITEMS = ["Free delivery", "Great value", "Easy returns", "Top rated", "New arrivals", "Gift ideas",
                "Open daily", "Best sellers", "Member prices", "Call us today", "Fast service", "Local shop"]


def low_quality_blocks(rng: random.Random, clean: list[Block]) -> tuple[list[Block], str]:
    style = rng.choice(["short", "caps", "lorem", "bullets"])
    if style == "short":
        return [("p", rng.choice(SHORT_PAGES))], style
    if style == "caps":
        return [(tag, text.upper()) for tag, text in clean], style
    if style == "lorem":
        return [("h1", "Lorem ipsum")] + [("p", LOREM)] * rng.randint(1, 3), style
    items = rng.sample(BULLET_ITEMS, rng.randint(8, 12))
    return [("p", "\u2022 " + item) for item in items], style


BOILERPLATE_MAIN = ["", "Please enable JavaScript to view this page.", "Loading...",
                    "This content is only available to subscribers.", "404 - Page not found"]


FILLERS = ["really", "very", "quite", "also", "then", "just", "still", "so", "later", "nice"]


def near_duplicate(rng: random.Random, blocks: list[Block]) -> list[Block]:
    """Small edits to an earlier page: one word in 25 to 70 swapped, dropped or added. The last word of
    a block is never touched, so every line keeps its final punctuation."""
    edited = [(tag, text.split()) for tag, text in blocks]
    spots = [(i, w) for i, (tag, tokens) in enumerate(edited) if tag == "p" for w in range(len(tokens) - 1)]
    for _ in range(max(1, len(spots) // rng.randint(25, 70))):
        i, w = rng.choice(spots)
        tokens = edited[i][1]
        if w >= len(tokens) - 1:
            continue
        action = rng.choice(["swap", "drop", "add"])
        if action == "swap":  # keep the punctuation that followed the word
            tokens[w] = rng.choice(FILLERS) + tokens[w][len(tokens[w].rstrip(string.punctuation)):]
        elif action == "drop" and len(tokens) > 3:
            del tokens[w]
        else:
            tokens.insert(w, rng.choice(FILLERS))
    return [(tag, " ".join(tokens)) for tag, tokens in edited if tokens]


# ----------------------------------------------------------------------------------------------------
# The page around the content: chrome, then quirks of HTML and encoding.

SITES = {
    "stories": ["storytime", "bedtime-tales", "little-reads", "fable-corner"],
    "encyclopedia": ["openwiki", "knowpedia", "almanac-online", "wikifacts"],
    "forum": ["hobbyboard", "askaround", "talkshop", "helpdesk-community"],
    "code": ["devnotes", "snippetbox", "codecorner", "pyhelp"],
}
NAV_WORDS = ["Home", "About", "Contact", "Blog", "Archive", "Topics", "Login", "Sign up", "Help", "Shop"]
COOKIE_TEXT = ["We use cookies to improve your experience. By continuing you accept our cookie policy.",
               "This site uses cookies. Read our privacy policy to learn more.",
               "Cookies help us deliver our services. By using our services, you agree to our use of cookies."]
AD_TEXT = ["Advertisement: Save 50% on garden furniture this week only!", "Sponsored: Try our new app for free",
           "Ad: Cheap flights to sunny places - book today", "Recommended for you: 10 tricks for a tidy kitchen"]
FOOTER_TEXT = ["All rights reserved.", "Privacy policy | Terms of use | Imprint", "Made with love by volunteers.",
               "Follow us on social media."]
SCRIPTS = ["window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} gtag('js', new Date());",
           "document.addEventListener('DOMContentLoaded', function () { if (x < 3 && y > 1) { init(); } });",
           "var ads = document.querySelectorAll('.ad'); for (var i = 0; i < ads.length; i++) { ads[i].load(); }"]
STYLES = ["body { font-family: sans-serif; margin: 0 auto; max-width: 60em; }",
          ".ad { border: 1px solid #ccc; } .cookie-banner { position: fixed; bottom: 0; }"]


def _chrome(rng: random.Random, site: str, title: str, main_html: str, lang: str) -> str:
    """Wrap the main content in a page. Half the sites use semantic tags, half class names only."""
    semantic = rng.random() < 0.5
    nav = " ".join(f'<a href="/{w.lower().replace(" ", "-")}">{w}</a>' for w in rng.sample(NAV_WORDS, 5))
    ad = rng.choice(AD_TEXT)
    related = "".join(f'<li><a href="/p/{rng.randint(1, 9999)}">{made_up_name(rng)} {rng.choice(["tips", "news", "guide"])}</a></li>'
                      for _ in range(rng.randint(2, 5)))
    year = rng.randint(2015, 2024)
    date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {year}"
    share = '<div class="tools"><a href="#">Share</a> <a href="#">Tweet</a> <a href="#">Print this page</a></div>'
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        f'<head><meta charset="utf-8"><title>{html.escape(title)} | {site}</title>',
        f"<style>{rng.choice(STYLES)}</style><script>{rng.choice(SCRIPTS)}</script></head>",
        "<body>",
        (f'<header><nav>{nav}</nav></header>' if semantic else f'<div id="top-menu" class="menu">{nav}</div>'),
        f'<div class="cookie-banner" id="cookie-consent">{rng.choice(COOKIE_TEXT)} <button>Accept</button></div>',
        ('<main><article>' if semantic else '<div id="content" class="post-content">'),
        f'<div class="byline">By {rng.choice(USERNAMES)} on {date}</div>',
        main_html,
        (share if rng.random() < 0.3 else ""),
        ('</article></main>' if semantic else '</div>'),
        (f'<aside class="sidebar"><div class="ad-slot">{ad}</div><ul class="related">{related}</ul></aside>' if semantic
         else f'<div class="sidebar"><div class="sponsored">{ad}</div><ul>{related}</ul></div>'),
        (f'<footer>&copy; {year} {site}. {rng.choice(FOOTER_TEXT)}</footer>' if semantic
         else f'<div class="site-footer">&copy; {year} {site}. {rng.choice(FOOTER_TEXT)}</div>'),
        f'<script src="/static/app.{rng.randint(100, 999)}.js"></script>',
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p)


def break_html(rng: random.Random, page: str) -> str:
    """Real-world damage that leaves the content readable: missing end tags, upper case, a truncated tail."""
    for tag in ["</p>", "</li>"]:  # end tags that HTML lets you leave out
        if rng.random() < 0.5:
            page = page.replace(tag, "", rng.randint(1, 3))
    if rng.random() < 0.3:
        page = page.replace("<p>", "<P>").replace("</p>", "</P>")
    if rng.random() < 0.3:
        page = re.sub(r'(class|id)="([\w-]+)"', r"\1=\2", page)  # unquoted attributes
    if rng.random() < 0.5:  # cut the page off somewhere after the content, maybe inside a tag
        start = max(page.rfind("</main>"), page.rfind('<div class="sidebar"'), page.rfind("<aside"))
        if start > 0:
            page = page[: rng.randint(start + 1, len(page))]
    return page


ENCODINGS = ["cp1252", "latin-1 undeclared", "utf-8 bom", "utf-16"]


def encode_page(rng: random.Random, page: str, odd: bool) -> tuple[bytes, str]:
    if not odd:
        return page.encode("utf-8"), ""
    choice = rng.choice(ENCODINGS)
    try:
        if choice == "cp1252":
            return page.replace('charset="utf-8"', 'charset="windows-1252"').encode("cp1252"), choice
        if choice == "latin-1 undeclared":
            return page.replace('<meta charset="utf-8">', "").encode("cp1252"), choice
    except UnicodeEncodeError:  # Cyrillic or Greek cannot be written in cp1252: fall back to a BOM
        choice = "utf-8 bom"
    if choice == "utf-8 bom":
        return b"\xef\xbb\xbf" + page.encode("utf-8"), choice
    return page.encode("utf-16"), choice


def typographic(text: str) -> str:
    """Curly apostrophes and quotes, as many sites serve them (so a wrong decoding shows)."""
    text = text.replace("'", "\u2019")
    out, opening = [], True
    for ch in text:
        if ch == '"':
            out.append("\u201c" if opening else "\u201d")
            opening = not opening
        else:
            out.append(ch)
    return "".join(out)


def not_text_payload(rng: random.Random) -> tuple[bytes, str]:
    style = rng.choice(["empty", "png", "pdf", "gzip"])
    body = bytes(rng.randrange(256) for _ in range(rng.randint(200, 2000)))
    return {"empty": b"", "png": b"\x89PNG\r\n\x1a\n" + body, "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + body,
            "gzip": b"\x1f\x8b\x08\x00" + body}[style], style


# ----------------------------------------------------------------------------------------------------
# Putting a record together.

def page_kind(seed: int, index: int) -> tuple[str, str]:
    """(domain, defect) of page `index`: cheap, so duplicates can look back for a good page to copy."""
    rng = _rng(seed, index, "kind")
    domain = _pick_share(rng, DOMAINS)
    defect = _pick_share(rng, DEFECT_SHARES, rest="")
    if defect in ("exact_dup", "near_dup") and index == 0:
        defect = ""
    return domain, defect


def _original_for(seed: int, index: int, rng: random.Random) -> int | None:
    """An earlier good page for a duplicate to copy, or None if the window holds none."""
    for _ in range(20):
        j = rng.randrange(max(0, index - DUP_WINDOW), index)
        if page_kind(seed, j)[1] == "":
            return j
    return None


def _url(rng: random.Random, domain: str, index: int, title: str) -> tuple[str, str]:
    site = rng.choice(SITES[domain])
    slug = "-".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in title.split()[:6]).strip("-") or "page"
    path = {"stories": "tales", "encyclopedia": "wiki", "forum": "t", "code": "snippets"}[domain]
    return site, f"https://www.{site}.example/{path}/{slug}-{index}"


@dataclass
class _Content:
    """A page's main content before it is dressed in HTML."""

    domain: str
    blocks: list[Block]
    detail: str = ""
    lang: str = "en"
    pii: tuple[tuple[str, str], ...] = ()
    traps: tuple[str, ...] = ()


def _fresh_content(rng: random.Random, seed: int, index: int, domain: str, defect: str) -> _Content:
    """New content for a good page or a page with one of the content defects."""
    blocks = content_blocks(domain, seed, index)
    if defect == "":
        content = _Content(domain, blocks)
        if domain != "stories" and rng.random() < PII_SHARE:
            content.blocks, content.pii = add_pii(rng, blocks)
        if domain == "forum" and rng.random() < 0.05:  # a trap for the toxicity filter: a quoted word
            content.blocks = content.blocks + [("p", MODERATOR_NOTE.format(word=rng.choice(BLOCKLIST)))]
            content.traps = ("blocked word quoted",)
        if any("ISBN" in t or "Tested with build" in t for _, t in content.blocks):
            content.traps += ("number looks like pii",)
        return content
    if defect == "spam":
        return _Content(domain, *spam_blocks(rng))
    if defect == "gibberish":
        return _Content(domain, *gibberish_blocks(rng))
    if defect == "foreign":
        blocks, lang = foreign_blocks(rng)
        return _Content(domain, blocks, lang, lang)
    if defect == "toxic":  # toxic pages are forum threads
        return _Content("forum", *toxic_blocks(rng, forum_blocks(rng)))
    if defect == "low_quality":
        return _Content(domain, *low_quality_blocks(rng, blocks))
    if defect == "boilerplate":
        main = rng.choice(BOILERPLATE_MAIN)
        return _Content(domain, [("p", main)] if main else [], main or "empty")
    raise ValueError(f"no content for defect {defect!r}")


def _copied_content(rng: random.Random, original: CrawlRecord, defect: str) -> _Content:
    """The content of an earlier good page, exactly (exact_dup) or with small edits (near_dup)."""
    blocks = _blocks_of(original)
    if defect == "exact_dup":
        return _Content(original.domain, blocks, "copy", original.lang, original.pii, original.traps)
    blocks = near_duplicate(rng, blocks)
    pii = tuple(p for p in original.pii if p[1] in blocks_to_text(blocks))
    return _Content(original.domain, blocks, "edited", original.lang, pii, original.traps)


def crawl_record(index: int, seed: int = 0) -> CrawlRecord:
    """Page `index` of the crawl with this seed (any page can be drawn on its own)."""
    if index < 0:
        raise ValueError(f"page index must be >= 0, got {index}")
    domain, defect = page_kind(seed, index)
    rng = _rng(seed, index, "page")
    dup_of = _original_for(seed, index, rng) if defect in ("exact_dup", "near_dup") else None
    if defect in ("exact_dup", "near_dup") and dup_of is None:
        defect = ""

    if defect == "not_text":
        payload, detail = not_text_payload(rng)
        site, url = _url(rng, domain, index, "file")
        return CrawlRecord(index, url, payload, domain, defect, detail, lang="")
    if dup_of is not None:
        original = crawl_record(dup_of, seed)  # originals are good pages, so this recursion is one level deep
        if defect == "exact_dup" and rng.random() < 0.5:  # a mirror: the very same bytes at another URL
            site, url = _url(rng, original.domain, index, original.text.split("\n")[0])
            return CrawlRecord(index, url, original.html, original.domain, defect, "mirror", original.text,
                               original.lang, original.pii, dup_of, original.quirks, original.traps)
        content = _copied_content(rng, original, defect)
    else:
        content = _fresh_content(rng, seed, index, domain, defect)

    blocks = content.blocks
    if rng.random() < 0.3 and content.lang == "en" and dup_of is None:  # copies keep the original's characters
        blocks = [(tag, text if tag == "pre" else typographic(text)) for tag, text in blocks]
    title = blocks[0][1] if blocks else "Untitled"
    site, url = _url(rng, content.domain, index, title)
    page = _chrome(rng, site, title, blocks_to_html(blocks), content.lang)
    quirks = []
    if rng.random() < BROKEN_HTML_SHARE:
        page = break_html(rng, page)
        quirks.append("broken_html")
    raw, encoding = encode_page(rng, page, rng.random() < ODD_ENCODING_SHARE)
    if encoding:
        quirks.append(f"encoding:{encoding}")
    return CrawlRecord(index, url, raw, content.domain, defect, content.detail, blocks_to_text(blocks), content.lang,
                       content.pii, dup_of, tuple(quirks), content.traps)


def _blocks_of(record: CrawlRecord) -> list[Block]:
    """The content blocks of a good page, read back from its true text (headings become paragraphs)."""
    return [("p", line) for line in record.text.split("\n")]


def crawl(n: int, seed: int = 0, start: int = 0) -> list[CrawlRecord]:
    """Pages start .. start+n-1 of the crawl with this seed."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [crawl_record(i, seed) for i in range(start, start + n)]
