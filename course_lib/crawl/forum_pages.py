"""Domain 3, forum threads: a question about a hobby, then two to four replies, sometimes a thank-you.

Replies are put together from sentence patterns and topic phrases; every pattern is used at most once
per thread, so that a good thread does not repeat itself.
"""

from __future__ import annotations

import random

from course_lib.crawl.blocks import Block

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
# Added to a few good threads: a blocked word on a page that is not toxic (a trap for the blocklist).
MODERATOR_NOTE = "Reminder from the moderators: words like {word} are not welcome here, so please keep the thread friendly."


def forum_blocks(rng: random.Random) -> list[Block]:
    """A thread on a random topic: the question as title and first post, then the replies."""
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
