"""The page around the content: head, navigation, cookie banner, byline, ads, related links, footer.

This is what an extractor must remove. Half the pages mark it up with semantic tags (<nav>, <aside>,
<footer>), half only with class and id names, so an extractor has to understand both.
"""

from __future__ import annotations

import html
import random

from course_lib.crawl.blocks import made_up_name
from course_lib.crawl.encyclopedia_pages import MONTHS
from course_lib.crawl.forum_pages import USERNAMES

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


def wrap_page(rng: random.Random, site: str, title: str, main_html: str, lang: str) -> str:
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
