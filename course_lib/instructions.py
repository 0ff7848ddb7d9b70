"""Instruction data from the story world, and a verifier for every answer (chapter 6).

Most SFT data is written by people or by another model, and most answers are judged by another model or by
eye. Here every instruction comes from a story whose facts we know, so every answer is graded exactly:

    reading   a story, then a question about it ("What colour is Mia's kite?"); a short answer,
              right when it equals the true one after `normalise_answer` (case, spaces, a final
              full stop and a leading "a"/"an"/"the" do not count)
    writing   "Write a story about a girl named Mia who loses her red kite."; the answer must be a valid
              story under the grammar (`stories.score`) AND have that hero name, kind, colour and thing,
              and the thing must get lost; each constraint is read from the parser's facts and reported
              on its own
    refusal   the same request with something the world cannot have (a name, kind, thing or colour it
              has no word for, or "a girl named Tom"); the right answer is the refusal that names the
              impossible part, "I cannot write that story: the story world has no dragon."

Reading examples also carry the story's other questions (`follow_ups`), which training may add as further turns
of the same conversation; `training_mixture` interleaves the families (and, if asked, plain stories as "replay").

Splits come from the corpus splits: the items of "test" are built from test stories only (and refusals
use impossible words of their own), so no test story ever appears in training data. Item `k` of a family
is the same on every machine: families scan stories 0, 1, 2, ... of their split and draw their choices
with the stories' own PRNG (`stories.SplitMix64`). Stories longer than MAX_STORY_CHARS are skipped, so
every conversation fits the story model's context of 256 tokens.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from course_lib import stories

FAMILIES = ("reading", "writing", "refusal")
MAX_STORY_CHARS = 700  # about 170 tokens: a story plus a question, or a request plus a story, fits 256 tokens
MAX_CONVERSATION_CHARS = 800  # a reading conversation with follow-up questions stays within 256 tokens
REFUSAL = "I cannot write that story: the story world has no {what}."
TEST_SIZES = {"reading": 200, "writing": 100, "refusal": 100}  # the fixed test sets

# Words the world has no place for, different in each split (a model must learn the world's lists, not these).
OUTSIDE = {
    "name": {"train": "Zed Kira Olga Bruno Pablo Greta Igor Nadia Felix Hana Boris Petra".split(),
             "val": "Yuri Lola Otto".split(), "test": "Vera Marco Ingrid Tariq Sofia Karl".split()},
    "kind": {"train": "dragon lion whale tiger monkey penguin".split(), "val": "wolf camel".split(),
             "test": "unicorn elephant giraffe".split()},
    "thing": {"train": "guitar phone wagon sword basket".split(), "val": "pencil".split(), "test": "piano clock ladder".split()},
    "colour": {"train": "violet beige navy".split(), "val": "lilac".split(), "test": "turquoise crimson".split()},
}
READING_QUESTIONS = ("name", "kind", "thing", "colour", "friend", "found", "place")


@dataclass(frozen=True)
class Example:
    """One instruction and its reference response, with what the verifier needs (`target`)."""

    family: str
    prompt: str
    response: str
    target: dict = field(hash=False)  # reading: {"question", "answer"}; writing: the constraints; refusal: {"why"}
    split: str
    index: int  # the story it was built from
    follow_ups: tuple = ()  # reading: more (question, answer) pairs about the same story, for multi-turn training

    def messages(self, with_response: bool = True, follow_ups: bool = False) -> list[dict]:
        """The conversation in the usual chat form: [{"role": "user", ...}, {"role": "assistant", ...}];
        with `follow_ups`, further questions about the same story as further turns."""
        out = [{"role": "user", "content": self.prompt}]
        if not with_response:
            return out
        out.append({"role": "assistant", "content": self.response})
        for question, answer in self.follow_ups if follow_ups else ():
            out += [{"role": "user", "content": f"Question: {question}"}, {"role": "assistant", "content": answer}]
        return out


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _rng(family: str, split: str, index: int, seed: int) -> stories.SplitMix64:
    salt = {"reading": 11, "writing": 12, "refusal": 13}[family]
    return stories.SplitMix64((salt << 48) ^ (stories.SPLITS[split] << 40) ^ (seed << 24) ^ index)


# ----------------------------------------------------------------------------------------------------
# The three families: (story, rng) -> (prompt, response, target), or None where the family does not apply


def reading_item(story: stories.Story, rng: stories.SplitMix64):
    questions = reading_questions(story)
    kind = list(questions)[rng.below(len(questions))]
    question, answer = questions[kind]
    follow_ups, size = [], len(story.text) + len(question)
    for other, (q, a) in questions.items():  # as many as fit the context (about 4 characters a token)
        if other != kind and size + len(q) + len(a) + 40 <= MAX_CONVERSATION_CHARS:
            follow_ups.append((q, a))
            size += len(q) + len(a) + 40
    return f"{story.text}\n\nQuestion: {question}", answer, {"question": kind, "answer": answer}, tuple(follow_ups)


def reading_questions(story: stories.Story) -> dict[str, tuple[str, str]]:
    """Every question the story can answer: {kind: (question, answer)}, in the order of READING_QUESTIONS."""
    f = story.facts
    hero = f["hero"]["name"]
    questions = {"name": ("What is the name of the main character?", hero),
                 "kind": (f"What kind of animal or child is {hero}?", f["hero"]["kind"])}
    if f["thing"]:
        questions["thing"] = (f"What is {hero}'s favourite thing?", f["thing"])
        questions["colour"] = (f"What colour is {hero}'s {f['thing']}?", f["colour"])
    if f["friend"]:
        questions["friend"] = (f"What is the name of {hero}'s friend?", f["friend"]["name"])
    if f["found_at"]:
        questions["found"] = (f"Where was the {f['thing']} found?", f["found_at"])
    if f["places"]:
        questions["place"] = (f"Where did {hero} go first?", f"the {f['places'][0]}")
    return questions


def writing_request(name: str, kind: str, female: bool, colour: str, thing: str) -> str:
    return f"Write a story about {article(kind)} {kind} named {name} who loses {'her' if female else 'his'} {colour} {thing}."


def writing_item(story: stories.Story, rng: stories.SplitMix64):
    f = story.facts
    if "lose" not in f["events"]:
        return None
    hero = f["hero"]
    target = {"name": hero["name"], "kind": hero["kind"], "colour": f["colour"], "thing": f["thing"]}
    prompt = writing_request(hero["name"], hero["kind"], hero["pronoun"] == "she", f["colour"], f["thing"])
    return prompt, story.text, target


def refusal_item(story: stories.Story, rng: stories.SplitMix64, split: str):
    f = story.facts
    if f["thing"] is None:
        return None
    name, kind, female, colour, thing = f["hero"]["name"], f["hero"]["kind"], f["hero"]["pronoun"] == "she", f["colour"], f["thing"]
    why = ["name", "kind", "thing", "colour", "gender"][rng.below(5)]
    if why == "gender":  # "a girl named Tom": in this world girls have girls' names and boys boys' names
        girl = rng.below(2) == 0
        kind, female = ("girl", True) if girl else ("boy", False)
        pool = stories.MALE_NAMES if girl else stories.FEMALE_NAMES
        name = pool[rng.below(len(pool))]
    else:
        words = OUTSIDE[why][split]
        word = words[rng.below(len(words))]
        name, kind, thing, colour = (word if why == w else v for w, v in
                                     (("name", name), ("kind", kind), ("thing", thing), ("colour", colour)))
    what = {"name": f"one named {name}", "kind": f"{kind}s", "thing": f"{thing}s", "colour": f"{colour} things",
            "gender": f"{kind} named {name}"}[why]
    answer = REFUSAL.format(what=what)
    return writing_request(name, kind, female, colour, thing), answer, {"why": why, "answer": answer}


@functools.lru_cache(maxsize=64)
def family_examples(family: str, split: str = "train", n: int = 100, seed: int = 0, start: int = 0) -> tuple[Example, ...]:
    """The first `n` examples of a family from stories start, start + 1, ... of `split` (where it applies)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out, index = [], start
    while len(out) < n:
        story = stories.story(split, index, seed)
        rng = _rng(family, split, index, seed)
        if len(story.text) <= MAX_STORY_CHARS:
            built = (refusal_item(story, rng, split) if family == "refusal"
                     else (reading_item if family == "reading" else writing_item)(story, rng))
            if built is not None:
                out.append(Example(family, *built[:3], split=split, index=index, follow_ups=built[3] if len(built) > 3 else ()))
        index += 1
    return tuple(out)


MIXTURE = (("reading", 2), ("writing", 2), ("refusal", 1))  # per 5 training examples


def replay_examples(split: str = "train", n: int = 100, seed: int = 0) -> tuple[Example, ...]:
    """Plain stories ("replay" of pretraining data, against forgetting): trained on in the pretraining format."""
    return tuple(Example("replay", "", s.text, {}, split, i) for i, s in enumerate(stories.iter_stories(split, n, seed)))


def training_mixture(n: int, split: str = "train", seed: int = 0, mixture=MIXTURE) -> list[Example]:
    """`n` examples of all families, interleaved in the proportions of `mixture` (default 2 : 2 : 1); a
    "replay" family in the mixture adds plain stories."""
    mixture = tuple((f, w) for f, w in mixture if w > 0)
    period = sum(w for _, w in mixture)
    counts = {family: w * (n // period) for family, w in mixture}
    pattern = [family for family, w in mixture for _ in range(w)]
    for family in pattern[: n % period]:
        counts[family] += 1
    pools = {family: list(replay_examples(split, counts[family], seed) if family == "replay" else
                          family_examples(family, split, counts[family], seed)) for family in counts}
    out = []
    for k in range(n):
        family = pattern[k % period]
        if pools[family]:
            out.append(pools[family].pop(0))
    return out


def held_out(family: str, n: int | None = None, split: str = "test") -> tuple[Example, ...]:
    """The fixed held-out items of a family (TEST_SIZES[family] of them unless `n` says otherwise)."""
    return family_examples(family, split, TEST_SIZES[family] if n is None else n)


# ----------------------------------------------------------------------------------------------------
# Verifiers


def normalise_answer(text: str) -> str:
    """Lower case, single spaces, no final '.', '!' or '?', no leading article: ' The Park. ' -> 'park'."""
    text = " ".join(text.strip().lower().split())
    text = text.rstrip(".!?").strip()
    return re.sub(r"^(a|an|the) ", "", text)


@dataclass
class Verdict:
    """Whether a response is right (`ok`), and each check on its own (`checks`: name -> passed)."""

    ok: bool
    checks: dict
    detail: str = ""


WRITING_CHECKS = ("valid", "name", "kind", "colour", "thing", "lost")


def verify(example: Example, response: str) -> Verdict:
    """Grade `response` to `example` exactly (see the module docstring for each family's rule)."""
    if not isinstance(response, str):
        raise TypeError(f"a response is a str, got {type(response).__name__}")
    if example.family == "reading":
        ok = normalise_answer(response) == normalise_answer(example.target["answer"])
        return Verdict(ok, {"exact": ok}, "" if ok else f"expected {example.target['answer']!r}")
    if example.family == "refusal":
        refused = response.strip().startswith(REFUSAL.split(":")[0])
        ok = normalise_answer(response) == normalise_answer(example.target["answer"])
        return Verdict(ok, {"refused": refused, "reason": ok}, "" if ok else f"expected {example.target['answer']!r}")
    return verify_story(response, example.target)


def verify_story(text: str, target: dict) -> Verdict:
    """A written story: valid under the grammar, and each constraint of `target` read from its facts."""
    parsed = stories.score(text)
    if not parsed.ok:  # no facts to read: every constraint fails with the story
        return Verdict(False, dict.fromkeys(WRITING_CHECKS, False), parsed.error)
    facts = parsed.facts
    checks = {"valid": True, "name": facts["hero"]["name"] == target["name"], "kind": facts["hero"]["kind"] == target["kind"],
              "colour": facts["colour"] == target["colour"], "thing": facts["thing"] == target["thing"],
              "lost": "lose" in facts["events"]}
    wrong = [k for k, v in checks.items() if not v]
    return Verdict(not wrong, checks, f"fails {', '.join(wrong)}" if wrong else "")


# ----------------------------------------------------------------------------------------------------
# Asking the base model, which knows no chat format: plain-text prompts


def plain_reading_prompt(example: Example, shots: int = 0) -> str:
    """The story, then `shots` other questions about it with their answers, then 'Question: ...\nAnswer:'."""
    story = stories.story(example.split, example.index)
    questions = reading_questions(story)
    demos = [k for k in questions if k != example.target["question"]][:shots]
    lines = "".join(f"Question: {questions[k][0]}\nAnswer: {questions[k][1]}\n" for k in demos)
    return f"{story.text}\n\n{lines}Question: {questions[example.target['question']][0]}\nAnswer:"


def story_start(target: dict) -> str:
    """A first two sentences that already meet most constraints: the base model's best prompt for writing."""
    female = target["name"] in stories.FEMALE_NAMES
    return (f"Once upon a time, there was a little {target['kind']} named {target['name']}. "
            f"{'She' if female else 'He'} had {article(target['colour'])} {target['colour']} {target['thing']}.")
