"""Domain 4, short programming tutorials: an introduction, a code block, an explanation.

The code block is kept as <pre>, so extraction must keep its line breaks. Some tutorials mention a
four-part build number that looks like an IPv4 address: a trap for the PII masker.
"""

from __future__ import annotations

import random

from course_lib.crawl.blocks import Block

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
    """A tutorial for a random task: title, introduction, the code (names varied), an explanation."""
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
