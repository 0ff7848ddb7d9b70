"""Domain 1, stories: pages built from the course's story corpus (`course_lib.stories`).

Story `index` of the corpus's training split becomes page `index`: a title made from the story's facts,
then one paragraph per paragraph of the story.
"""

from __future__ import annotations

from course_lib import stories
from course_lib.crawl.blocks import Block


def story_blocks(index: int, seed: int) -> list[Block]:
    """Story `index` of the corpus (training split) as a page: a title, then its paragraphs."""
    story = stories.story("train", index, seed)
    paragraphs = [" ".join(p.split()) for p in story.text.split("\n") if p.strip()]
    hero, thing = story.facts.get("hero", {}).get("name"), story.facts.get("thing")
    title = f"{hero} and the {story.facts.get('colour', '')} {thing}" if hero and thing else f"A story about {hero or 'a friend'}"
    return [("h1", " ".join(title.split()))] + [("p", p) for p in paragraphs]
