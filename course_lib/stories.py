"""The story corpus: short English stories from a probabilistic grammar whose entropy we know exactly.

Every story is a walk through a small world: a hero (a child or an animal with a name, and so a pronoun),
the hero's treasured object (with a colour that stays the same all story long), places, a friend met on
the way, things lost and found. Each sentence is drawn from a template that fits the story so far; each
slot in the template (who, where, which colour...) is a weighted choice. Because we drew every choice
ourselves, we know the exact probability of every story, and so the corpus's entropy in bits per byte:
a floor that no language model can beat on held-out stories (chapters 3 and 5 measure models against it).

The same grammar runs backwards: `score(text)` parses any text and returns its exact log-probability, or
the first place where it stops being a story. Both directions read the same grammar (the templates,
their weights given the story so far, the slot options and the effects on the state), so they agree by
construction; the tests check it on thousands of stories, which also shows the grammar is unambiguous
(the parser finds exactly one derivation for each of them).

Determinism: our own 64-bit PRNG (SplitMix64) on integers only, so the same seed gives the same stories on
every OS, CPU and Python version. Story `i` of a split has its own seed, so splits are fixed, a story
can be drawn on its own, and the test set does not change when the training set grows.
"""

from __future__ import annotations

import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.lm import END_OF_TEXT  # the one separator of every document

SPLITS = {"train": 1, "val": 2, "test": 3}
MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------------
# Randomness: SplitMix64, a tiny PRNG with a well-known, platform-independent integer recurrence.

def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) (multiply-shift; the bias is below 2**-40 for our n)."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        return (_mix64(self.state) * n) >> 64


def _story_seed(seed: int, split: str, index: int) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    if index < 0:
        raise ValueError(f"story index must be >= 0, got {index}")
    return _mix64(_mix64(_mix64(seed & MASK64) ^ SPLITS[split]) ^ index)


# ----------------------------------------------------------------------------------------------------
# The world: word lists. Every choice below is a list of (text, weight) options.

FEMALE_NAMES = "Mia Lily Anna Sara Emma Zoe Nora Ella Ruby Lucy Amy Kate Rosa Ivy Maya Lena".split()
MALE_NAMES = "Tom Ben Max Sam Leo Jack Finn Noah Owen Theo Dan Hugo Omar Ravi Luke Eli".split()
KINDS = "girl boy dog cat rabbit bear fox mouse duck bird frog pig".split()
TRAITS = ["a little", "a brave", "a kind", "a curious", "a shy", "a happy", "a clever", "a small",
          "a sleepy", "a funny", "a gentle", "an honest"]
OPENINGS = ["Once upon a time,", "One day,", "Long ago,", "One sunny morning,", "One cold winter day,",
            "In a small village,"]
HOMES = ["in a small house", "near a big forest", "by the sea", "on a farm", "in a busy town",
         "under an old tree", "next to a river"]
COLOURS = "red blue green yellow purple orange pink white black brown golden silver".split()
THINGS = "ball kite hat book box cup boat drum car doll scarf bike lamp shell train robot".split()
PLACES = ("park garden forest beach river hill farm market school library lake meadow zoo playground "
          "bakery harbor castle cave island pond").split()
GO_VERBS = ["went", "ran", "walked", "hopped", "skipped", "raced"]
PLACE_ADJECTIVES = [("", 4), ("big ", 1), ("old ", 1), ("quiet ", 1), ("sunny ", 1), ("little ", 1)]
CREATURES = "butterfly snail beetle squirrel owl goat horse frog sheep bee".split()
NEAR = ["near the path", "on a fence", "by the water", "in a tree", "under a leaf", "on the grass"]
INTENSITY = [("", 3), ("very ", 1), ("a bit ", 1), ("so ", 1)]
MANNERS = [("", 6), (" quickly", 1), (" slowly", 1), (" with a big smile", 1), (" in the morning", 1),
           (" after lunch", 1)]
PLAY_ENDINGS = [("", 4), (" all day", 1), (" for a long time", 1), (" in the sun", 1), (" until dinner", 1)]
SKIES = {"sun": ["warm", "bright", "hot"], "sky": ["blue", "grey", "clear"], "wind": ["cold", "strong", "soft"]}
SAD_FEELINGS = ["was very sad", "began to cry", "felt worried", "sat down and sighed"]
SPOTS = ["under the bed", "behind the door", "in the tall grass", "near the pond", "inside a box",
         "under a big rock", "behind a tree", "on the roof", "next to the fence", "under the table",
         "in the garden shed", "by the old well"]
TOGETHER = ["played tag", "played hide and seek", "built a sand castle", "sang a song", "read a story",
            "shared a snack", "ran up the hill", "flew a paper plane"]
FEELINGS = "happy proud tired brave calm hungry excited sleepy".split()
FOODS = ["an apple", "some bread", "a big cake", "a bowl of soup", "three cookies", "a sweet plum",
         "a warm muffin", "some honey", "a slice of pie", "two carrots"]
UTTERANCES = ["I am so happy!", "What a nice day!", "Let us play!", "Look at that!", "I want to go home.",
              "This is fun!", "Where are you?", "Can you see it?", "I am not afraid.", "Come with me!",
              "Thank you!", "What is that?"]
END_MOODS = ["happy", "with a big smile", "tired but happy"]
CONNECTIVES = [("", 8), ("Then, ", 2), ("After that, ", 1), ("Later, ", 1), ("Soon, ", 1), ("Next, ", 1)]
SEPARATORS = [(" ", 5), ("\n", 1)]
_SEPARATOR_WEIGHTS = [w for _, w in SEPARATORS]
_SEPARATOR_TOTAL = sum(_SEPARATOR_WEIGHTS)


@dataclass
class Character:
    name: str
    kind: str
    female: bool
    trait: str  # with its article, e.g. "a brave"

    @property
    def pronoun(self) -> str:
        return "she" if self.female else "he"

    @property
    def possessive(self) -> str:
        return "her" if self.female else "his"


@dataclass
class State:
    """What the story has established so far; templates and slots read it, effects change it."""

    n: int = 0                       # sentences so far
    hero: Character | None = None
    friend: Character | None = None
    focus: Character | None = None   # who "she"/"he" refers to: the last sentence's subject
    colour: str | None = None        # the hero's treasured object
    thing: str | None = None
    place: str | None = None
    raining: bool = False
    lost: bool = False
    searches: int = 0
    helped: bool = False
    events: list = field(default_factory=list)
    places: list = field(default_factory=list)
    found_at: str | None = None
    ref_cache: dict = field(default_factory=dict)  # subject options, rebuilt only when focus or cast change

    def names(self) -> set[str]:
        return {c.name for c in (self.hero, self.friend) if c}


# ----------------------------------------------------------------------------------------------------
# Slots: functions (state, bound) -> list of (text, weight, value). `bound` holds the values chosen
# earlier in the same sentence. A slot with one option costs no bits: it is determined by context.

Option = tuple  # (text, weight, value)


def _uniform(words: list[str]) -> list[Option]:
    return [(w, 1, w) for w in words]


def _weighted(pairs: list[tuple[str, int]]) -> list[Option]:
    return [(text, w, text) for text, w in pairs]


def _refs(state: State, who: list[Character], connective: bool) -> list[Option]:
    """Ways to name the sentence's subject: a pronoun for whoever is in focus, or a name.

    With `connective`, the subject may follow "Then, " and friends (and is then lower case).
    """
    key = (state.focus.name if state.focus else None, tuple(p.name for p in who), connective)
    if key in state.ref_cache:
        return state.ref_cache[key]
    subjects = []
    for person in who:
        if person is state.focus:
            subjects.append((person.pronoun, 3, person))
        subjects.append((person.name, 2, person))
    options = []
    for conn, conn_weight in (CONNECTIVES if connective else [("", 1)]):
        for text, weight, person in subjects:
            if not conn:
                text = text[0].upper() + text[1:]
            options.append((conn + text, conn_weight * weight, person))
    state.ref_cache[key] = options
    return options


def _everyone(state: State) -> list[Character]:
    return [c for c in (state.hero, state.friend) if c]


def _name_options(kind: str | None, taken: set[str]) -> list[Option]:
    female = [] if kind == "boy" else [n for n in FEMALE_NAMES if n not in taken]
    male = [] if kind == "girl" else [n for n in MALE_NAMES if n not in taken]
    return [(n, 1, (n, True)) for n in female] + [(n, 1, (n, False)) for n in male]


def _kind_options(name_female: bool | None) -> list[Option]:
    return [(k, 1, k) for k in KINDS if not (k == "girl" and name_female is False) and not (k == "boy" and name_female is True)]


_CONST = {
    "opening": _uniform(OPENINGS), "a_trait": _uniform(TRAITS), "kind": _uniform(KINDS), "home": _uniform(HOMES),
    "a_colour": [(("an " if c[0] in "aeiou" else "a ") + c, 1, c) for c in COLOURS], "colour": _uniform(COLOURS),
    "thing": _uniform(THINGS), "place": _uniform(PLACES), "go": _uniform(GO_VERBS), "manner": _weighted(MANNERS),
    "play_end": _weighted(PLAY_ENDINGS), "sad": _uniform(SAD_FEELINGS), "spot": _uniform(SPOTS),
    "together": _uniform(TOGETHER), "feeling": _uniform(FEELINGS), "food": _uniform(FOODS),
    "utterance": _uniform(UTTERANCES), "end_mood": _uniform(END_MOODS),
    "place_adj": _weighted(PLACE_ADJECTIVES), "creature": _uniform(CREATURES), "near": _uniform(NEAR),
    "intensity": _weighted(INTENSITY),
    "sky": [(f"{noun} was {adj}", 1, noun) for noun, adjs in SKIES.items() for adj in adjs],
}

SLOTS: dict[str, Callable[[State, dict], list[Option]]] = {
    "lead_any": lambda s, b: _refs(s, _everyone(s), connective=True),
    "lead_hero": lambda s, b: _refs(s, [s.hero], connective=True),
    "subj_hero": lambda s, b: _refs(s, [s.hero], connective=False),
    "hero_name": lambda s, b: [(s.hero.name, 1, s.hero)],
    "friend_name": lambda s, b: [(s.friend.name, 1, s.friend)],
    "hero_pronoun": lambda s, b: [(s.hero.pronoun, 1, s.hero)],
    "poss": lambda s, b: [(_subject(b).possessive, 1, None)],
    "thing_ref": lambda s, b: [(s.thing, 1, False), (f"{s.colour} {s.thing}", 1, True)],
    "own_thing": lambda s, b: [(s.thing, 1, None)],
    "name": lambda s, b: _name_options(b.get("kind"), s.names()),
    "name_any": lambda s, b: _name_options(None, s.names()),
    "kind_for_name": lambda s, b: _kind_options(b["name_any"][1]),
    "here": lambda s, b: [(s.place, 1, s.place)],
}


def _subject(bound: dict) -> Character:
    for key in ("lead_any", "lead_hero", "subj_hero", "hero_name", "hero_pronoun"):
        if key in bound:
            return bound[key]
    raise KeyError("template has no subject before its possessive")


def _options(slot: str, state: State, bound: dict) -> list[Option]:
    return _CONST[slot] if slot in _CONST else SLOTS[slot](state, bound)


# Weights and their totals of the constant slots, computed once (generation speed depends on it).
_CONST_WEIGHTS = {slot: ([o[1] for o in options], sum(o[1] for o in options)) for slot, options in _CONST.items()}


# ----------------------------------------------------------------------------------------------------
# Templates: a pattern of literal text and {slots}, a weight given the story so far (0 = not possible
# now), and an effect on the state once the sentence is chosen.

@dataclass
class Template:
    name: str
    pattern: str
    weight: Callable[[State], int]
    effect: Callable[[State, dict], None] = lambda s, b: None
    ends_story: bool = False
    parts: list = field(default_factory=list)  # literal strings and ("slot",) tuples, from the pattern

    def __post_init__(self) -> None:
        for i, piece in enumerate(re.split(r"\{(\w+)\}", self.pattern)):
            if i % 2:
                assert piece in _CONST or piece in SLOTS, f"unknown slot {piece} in {self.name}"
                self.parts.append((piece,))
            elif piece:
                self.parts.append(piece)


def _focus_on_subject(state: State, bound: dict) -> None:
    state.focus = _subject(bound)


def _then(*effects: Callable[[State, dict], None]) -> Callable[[State, dict], None]:
    def run(state: State, bound: dict) -> None:
        for effect in effects:
            effect(state, bound)
    return run


def _meet_hero(state: State, bound: dict) -> None:
    name, female = bound["name"] if "name" in bound else bound["name_any"]
    kind = bound.get("kind") or bound["kind_for_name"]
    state.hero = state.focus = Character(name, kind, female, bound["a_trait"])


def _meet_friend(state: State, bound: dict) -> None:
    name, female = bound["name"]
    state.friend = Character(name, bound["kind"], female, bound["a_trait"])
    state.focus = state.hero


def _set(**changes) -> Callable[[State, dict], None]:
    def run(state: State, bound: dict) -> None:
        for key, value in changes.items():
            setattr(state, key, bound[value[1:]] if isinstance(value, str) and value.startswith("$") else value)
    return run


def _go(state: State, bound: dict) -> None:
    state.place = bound["place"]
    state.places.append(state.place)


def _search(state: State, bound: dict) -> None:
    state.searches += 1


def _find(state: State, bound: dict) -> None:
    state.lost, state.found_at = False, bound["spot"]


def _started(s: State) -> bool:
    return s.n > 0


def _has_thing(s: State) -> bool:
    return s.thing is not None and not s.lost


def _end_weight(s: State) -> int:
    if s.n >= MAX_SENTENCES:
        return 1
    return 0 if s.n < 9 or s.lost else s.n - 8


TEMPLATES = [
    Template("open", "{opening} there was {a_trait} {kind} named {name}.", lambda s: 3 * (s.n == 0), _meet_hero),
    Template("open_home", "{name_any} was {a_trait} {kind_for_name} who lived {home}.", lambda s: 2 * (s.n == 0), _meet_hero),
    Template("have", "{subj_hero} had {a_colour} {thing}.", lambda s: 4 * (_started(s) and s.thing is None),
             _then(_focus_on_subject, _set(colour="$a_colour", thing="$thing"))),
    Template("love", "{subj_hero} loved {poss} {colour} {thing} more than anything.",
             lambda s: 2 * (_started(s) and s.thing is None), _then(_focus_on_subject, _set(colour="$colour", thing="$thing"))),
    Template("go", "{lead_any} {go} to the {place_adj}{place}{manner}.", lambda s: 3 * (s.thing is not None),
             _then(_focus_on_subject, _go)),
    Template("play", "{lead_hero} played with {poss} {thing_ref}{play_end}.", lambda s: 3 * _has_thing(s), _focus_on_subject),
    Template("sky", "The {sky}.", lambda s: 1 * (s.thing is not None and not s.raining)),
    Template("rain", "It started to rain.", lambda s: 1 * (s.thing is not None and not s.raining), _set(raining=True)),
    Template("rain_stops", "The rain stopped.", lambda s: 2 * s.raining, _set(raining=False)),
    Template("lose", "{lead_hero} could not find {poss} {thing_ref}.", lambda s: 2 * (_has_thing(s) and s.found_at is None),
             _then(_focus_on_subject, _set(lost=True))),
    Template("sad", "{lead_hero} {sad}.", lambda s: 2 * s.lost, _focus_on_subject),
    Template("search", "{lead_any} looked {spot}.", lambda s: 3 * s.lost, _then(_focus_on_subject, _search)),
    Template("find", "{lead_any} found the {thing_ref} {spot}!", lambda s: 3 * (s.lost and s.searches > 0),
             _then(_focus_on_subject, _find)),
    Template("meet", "{lead_hero} met {a_trait} {kind} named {name}.", lambda s: 2 * (s.n >= 2 and s.friend is None), _meet_friend),
    Template("help", '{friend_name} said, "I will help you find your {own_thing}."',
             lambda s: 3 * (s.lost and s.friend is not None and not s.helped), _then(_set(helped=True), _set(focus=None))),
    Template("together", "{hero_name} and {friend_name} {together}.", lambda s: 2 * (s.friend is not None), _set(focus=None)),
    Template("say", '{lead_any} said, "{utterance}"', lambda s: 1 * _started(s), _focus_on_subject),
    Template("love_place", '{lead_any} said, "I love this {here}!"', lambda s: 1 * (s.place is not None), _focus_on_subject),
    Template("see", "{lead_any} saw {a_colour} {creature} {near}.", lambda s: 2 * _started(s), _focus_on_subject),
    Template("feel", "{lead_any} felt {intensity}{feeling}.", lambda s: 2 * _started(s), _focus_on_subject),
    Template("eat", "{lead_any} ate {food}.", lambda s: 1 * _started(s), _focus_on_subject),
    Template("share", "{lead_hero} shared {poss} {thing_ref} with {friend_name}.",
             lambda s: 2 * (_has_thing(s) and s.friend is not None), _focus_on_subject),
    # Endings: only as the last sentence; more likely the longer the story already is.
    Template("end_home", "{lead_hero} went home {end_mood}.", _end_weight, ends_story=True),
    Template("end_friends", "From that day on, {hero_name} and {friend_name} were best friends.",
             lambda s: _end_weight(s) * (s.friend is not None), ends_story=True),
    Template("end_sleep", "That night, {hero_pronoun} went to sleep with {poss} {thing_ref}.",
             lambda s: _end_weight(s) * (s.thing is not None), ends_story=True),
    Template("end_the_end", "The end.", _end_weight, ends_story=True),
]
MAX_SENTENCES = 30  # past this only endings are possible (so every story ends)


def _signature(s: State) -> tuple:
    """Everything the template weights above look at. A new weight rule must add what it reads here."""
    return (s.n == 0, s.n >= 2, s.n >= MAX_SENTENCES, _end_weight(s), s.thing is None, s.lost, s.raining,
            s.friend is None, s.place is None, s.searches > 0, s.helped, s.found_at is None)


_AVAILABLE_CACHE: dict[tuple, tuple[list, list[int], int]] = {}


def _available_now(state: State) -> tuple[list[tuple[Template, int]], list[int], int]:
    """Templates possible now with their weights (and the weights and their total, for sampling).

    Cached by the state's signature: the weight rules are evaluated once per kind of situation.
    """
    key = _signature(state)
    if key not in _AVAILABLE_CACHE:
        out = [(t, w) for t in TEMPLATES if (w := t.weight(state)) and (state.n < MAX_SENTENCES or t.ends_story)]
        _AVAILABLE_CACHE[key] = (out, [w for _, w in out], sum(w for _, w in out))
    return _AVAILABLE_CACHE[key]


def _available(state: State, last: bool | None) -> list[tuple[Template, int]]:
    """Templates possible now with their weights; `last` (parser only) keeps endings or the others."""
    available = _available_now(state)[0]
    return available if last is None else [(t, w) for t, w in available if t.ends_story == last]


# ----------------------------------------------------------------------------------------------------
# Generation

def _pick(rng: SplitMix64, weights: list[int], total: int) -> int:
    r = rng.below(total)
    for i, w in enumerate(weights):
        r -= w
        if r < 0:
            return i
    raise AssertionError("unreachable")


@dataclass
class Story:
    """One generated document: its text, its exact log2-probability (end included) and its facts."""

    text: str
    logprob2: float
    facts: dict

    @property
    def n_bytes(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def bits_per_byte(self) -> float:
        return -self.logprob2 / self.n_bytes


def _facts(state: State) -> dict:
    def person(c: Character | None) -> dict | None:
        return None if c is None else {"name": c.name, "kind": c.kind, "pronoun": c.pronoun, "trait": c.trait.split()[-1]}
    return {"hero": person(state.hero), "friend": person(state.friend), "colour": state.colour, "thing": state.thing,
            "places": list(state.places), "found_at": state.found_at, "events": list(state.events)}


def generate(rng: SplitMix64) -> Story:
    """Draw one story with `rng`, adding up the log2-probability of every choice made."""
    state, pieces, logp = State(), [], 0.0
    while True:
        available, weights, total = _available_now(state)
        i = _pick(rng, weights, total)
        template = available[i][0]
        logp += math.log2(weights[i] / total)
        bound = {}
        for part in template.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            slot = part[0]
            if slot in _CONST:
                options = _CONST[slot]
                option_weights, option_total = _CONST_WEIGHTS[slot]
            else:
                options = SLOTS[slot](state, bound)
                option_weights = [o[1] for o in options]
                option_total = sum(option_weights)
            if len(options) == 1:
                j = 0
            else:
                j = _pick(rng, option_weights, option_total)
                logp += math.log2(option_weights[j] / option_total)
            pieces.append(options[j][0])
            bound[slot] = options[j][2]
        template.effect(state, bound)
        state.events.append(template.name)
        state.n += 1
        if template.ends_story:
            return Story("".join(pieces), logp, _facts(state))
        k = _pick(rng, _SEPARATOR_WEIGHTS, _SEPARATOR_TOTAL)
        logp += math.log2(_SEPARATOR_WEIGHTS[k] / _SEPARATOR_TOTAL)
        pieces.append(SEPARATORS[k][0])


def story(split: str, index: int, seed: int = 0) -> Story:
    """Story number `index` of a split ("train", "val" or "test"); the same on every machine."""
    return generate(SplitMix64(_story_seed(seed, split, index)))


def iter_stories(split: str = "train", n: int | None = None, seed: int = 0, start: int = 0) -> Iterator[Story]:
    """Stream stories `start`, `start + 1`, ... of a split (forever when `n` is None); constant memory."""
    index = start
    while n is None or index < start + n:
        yield story(split, index, seed)
        index += 1


def stories(split: str = "train", n: int = 1000, seed: int = 0) -> list[Story]:
    return list(iter_stories(split, n, seed))


def corpus_text(split: str = "train", n_bytes: int = 1_000_000, seed: int = 0) -> str:
    """At least `n_bytes` of stories, each followed by END_OF_TEXT, as one string."""
    pieces, size = [], 0
    for s in iter_stories(split, None, seed):
        pieces.append(s.text + END_OF_TEXT)
        size += s.n_bytes
        if size >= n_bytes:
            return "".join(pieces)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------------------
# Scoring: the same walk, with the choices read from the text instead of drawn.

@dataclass
class Score:
    """`ok` and the exact log2-probability of a story, or the error and the character where it failed."""

    ok: bool
    logprob2: float = float("-inf")
    error: str = ""
    position: int = -1
    sentences: int = 0
    facts: dict | None = None  # a valid story's facts (hero, friend, colour, thing, ...), as `Story.facts`

    def __bool__(self) -> bool:
        return self.ok


_SENTENCE_END = re.compile(r'[.!?]"?(?=[ \n]|$)')


def _match(parts: list, k: int, text: str, pos: int, state: State, bound: dict, logp: float, out: list) -> None:
    """Every way the parts[k:] of a template can cover text[pos:] exactly; appends (bound, logp)."""
    if k == len(parts):
        if pos == len(text):
            out.append((dict(bound), logp))
        return
    part = parts[k]
    if isinstance(part, str):
        if text.startswith(part, pos):
            _match(parts, k + 1, text, pos + len(part), state, bound, logp, out)
        return
    options = _options(part[0], state, bound)
    total = sum(o[1] for o in options)
    for option_text, weight, value in options:
        if text.startswith(option_text, pos):
            bound[part[0]] = value
            _match(parts, k + 1, text, pos + len(option_text), state, bound, logp + math.log2(weight / total), out)
            del bound[part[0]]


def score(text: str) -> Score:
    """The exact log2-probability of `text` under the story grammar, or why and where it is not a story.

    `text` is one story without END_OF_TEXT. The probability includes the decision to end where it ends.
    """
    if not isinstance(text, str):
        raise TypeError(f"score() takes a str, got {type(text).__name__}")
    state, pos, logp = State(), 0, 0.0
    while True:
        end = _SENTENCE_END.search(text, pos)
        if end is None:
            return Score(False, error=f"sentence {state.n + 1} never ends with '.', '!' or '?'", position=pos, sentences=state.n)
        sentence_end = end.end()
        last = sentence_end == len(text)
        sentence = text[pos:sentence_end]
        available = _available(state, last)
        total = _available_now(state)[2]  # the weights of every template possible here, endings or not
        parses = []
        for template, weight in available:
            found = []
            _match(template.parts, 0, sentence, 0, state, {}, math.log2(weight / total), found)
            parses += [(template, bound, lp) for bound, lp in found]
        if not parses:
            what = "a story ending" if last else "a sentence that can come here"
            return Score(False, error=f"sentence {state.n + 1} ({sentence[:60]!r}) is not {what}", position=pos, sentences=state.n)
        if len(parses) > 1:  # the tests make sure this never happens
            names = [p[0].name for p in parses]
            return Score(False, error=f"sentence {state.n + 1} is ambiguous: {names}", position=pos, sentences=state.n)
        template, bound, sentence_logp = parses[0]
        logp += sentence_logp
        template.effect(state, bound)
        state.events.append(template.name)
        state.n += 1
        if last:
            return Score(True, logp, sentences=state.n, facts=_facts(state))
        separator = text[sentence_end]
        weight = dict(SEPARATORS).get(separator)
        if weight is None:
            return Score(False, error=f"unexpected {separator!r} after sentence {state.n}", position=sentence_end, sentences=state.n)
        logp += math.log2(weight / _SEPARATOR_TOTAL)
        pos = sentence_end + 1


# ----------------------------------------------------------------------------------------------------
# The floor

def entropy_floor(split: str = "test", n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Bits per byte of the source, pooled over `n` stories: (estimate, 95% CI low, 95% CI high).

    Pooled like lm-evaluation-harness's bits_per_byte: sum of -log2 p(story) (end included) over the sum
    of UTF-8 bytes. The interval is the delta-method interval of this ratio estimator.
    """
    bits, sizes = [], []
    for s in iter_stories(split, n, seed):
        bits.append(-s.logprob2)
        sizes.append(s.n_bytes)
    ratio = sum(bits) / sum(sizes)
    mean_size = sum(sizes) / n
    residual_var = sum((b - ratio * y) ** 2 for b, y in zip(bits, sizes)) / (n - 1)
    half_width = 1.96 * math.sqrt(residual_var / n) / mean_size
    return ratio, ratio - half_width, ratio + half_width


def generation_speed(seconds: float = 2.0) -> float:
    """Bytes of story text generated per second on this core (for the benchmark script)."""
    start, size, index = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds:
        size += story("train", index).n_bytes
        index += 1
    return size / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------------
# Bring your own text (optional cells only: every notebook and test runs on the stories above)

PUBLIC_TEXTS = {
    "tiny_shakespeare": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
}


def load_text(path: str | Path, max_bytes: int | None = None) -> str:
    """A user's UTF-8 text file as a string (undecodable bytes become U+FFFD), with clear errors."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no text file at {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of a text file")
    data = path.read_bytes()[:max_bytes]
    if b"\x00" in data[:4096]:
        raise ValueError(f"{path} looks binary (it has NUL bytes); give a plain text file")
    return data.decode("utf-8", errors="replace")


def download_text(name: str, cache_dir: str | Path = "~/.cache/course_lib") -> str:
    """A named public text (see PUBLIC_TEXTS), downloaded once when online, then read from the cache."""
    if name not in PUBLIC_TEXTS:
        raise ValueError(f"unknown text {name!r}; known: {sorted(PUBLIC_TEXTS)}. For your own file use load_text(path).")
    cached = Path(cache_dir).expanduser() / f"{name}.txt"
    if not cached.exists():
        try:
            with urllib.request.urlopen(PUBLIC_TEXTS[name], timeout=30) as response:
                data = response.read()
        except OSError as error:
            raise ConnectionError(f"could not download {name!r} ({error}); you seem to be offline. "
                                  "The course works without it: every notebook uses the story corpus.") from None
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
    return load_text(cached)


def _check_lists_are_sane(pieces: Iterable[list[str]]) -> None:
    for words in pieces:
        assert len(set(words)) == len(words), f"duplicate option in {words}"


_check_lists_are_sane([FEMALE_NAMES + MALE_NAMES, KINDS, TRAITS, OPENINGS, HOMES, COLOURS, THINGS, PLACES,
                       GO_VERBS, SAD_FEELINGS, SPOTS, TOGETHER, FEELINGS, FOODS, UTTERANCES, END_MOODS])
