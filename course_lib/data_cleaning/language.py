"""Stage 2, language identification: keep English, drop other languages and text no language fits.

A character trigram language model per language, trained on a few sentences each (LANGUAGE_SAMPLES).
We predict the language whose model is least surprised by the text (fewest bits per character); if even
that one is very surprised (more than MAX_BITS_PER_CHAR), the text is in no language we know: "und",
which is how gibberish and keyboard mashing get caught here too. Russian and Greek have models of their
own; text in a script that no sample uses (Chinese, say) costs about 15 bits per character under every
model, so it comes out "und".
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

# The training text: the same nine everyday sentences in each language, so that the models differ by
# language and not by topic.
LANGUAGE_SAMPLES = {
    "en": "The weather was warm, so we walked along the river to the old mill and had lunch in the garden. "
          "She told me that the library would be closed on Monday because of the holiday. "
          "If you want to learn how it works, read the manual first and then try it yourself. "
          "They have lived in this town for many years and know everyone who works at the market. "
          "What time does the next train leave for the city? I think it is at half past seven. "
          "Our team has been working on this problem for a while, and we would welcome any ideas. "
          "The function returns a list with one value for each line of the file. "
          "He found his keys under the chair, right where he had left them the night before. "
          "It is one of the largest birds in the region and is often seen near lakes and rivers.",
    "fr": "Il faisait beau, alors nous avons marché jusqu'au vieux moulin et nous avons déjeuné dehors. "
          "Elle m'a dit que la bibliothèque serait fermée lundi à cause du jour férié. "
          "Si tu veux comprendre comment cela fonctionne, lis d'abord le mode d'emploi. "
          "Ils habitent dans cette ville depuis longtemps et connaissent tout le monde au marché. "
          "À quelle heure part le prochain train pour la ville? Je crois que c'est à sept heures et demie. "
          "Notre équipe travaille sur ce problème depuis un moment et toutes les idées sont les bienvenues. "
          "Il a retrouvé ses clés sous la chaise, là où il les avait laissées la veille au soir. "
          "C'est un des plus grands oiseaux de la région, on le voit souvent près des lacs. "
          "La fonction renvoie une liste avec une valeur pour chaque ligne du fichier.",
    "de": "Das Wetter war schön, also sind wir zur alten Mühle gelaufen und haben im Garten gegessen. "
          "Sie hat mir gesagt, dass die Bibliothek am Montag wegen des Feiertags geschlossen ist. "
          "Wenn du wissen willst, wie es funktioniert, lies zuerst die Anleitung. "
          "Sie wohnen schon viele Jahre in dieser Stadt und kennen jeden auf dem Markt. "
          "Wann fährt der nächste Zug in die Stadt? Ich glaube, um halb acht. "
          "Unser Team arbeitet schon eine Weile an diesem Problem, und wir freuen uns über jede Idee. "
          "Er hat seine Schlüssel unter dem Stuhl gefunden, genau dort, wo er sie am Abend gelassen hatte. "
          "Das ist einer der größten Vögel der Gegend und man sieht ihn oft an Seen und Flüssen. "
          "Die Funktion gibt eine Liste mit einem Wert für jede Zeile der Datei zurück.",
    "es": "Hacía buen tiempo, así que caminamos hasta el viejo molino y comimos en el jardín. "
          "Ella me dijo que la biblioteca estaría cerrada el lunes por la fiesta. "
          "Si quieres saber cómo funciona, lee primero el manual y luego pruébalo tú mismo. "
          "Viven en esta ciudad desde hace muchos años y conocen a todos en el mercado. "
          "¿A qué hora sale el próximo tren para la ciudad? Creo que a las siete y media. "
          "Nuestro equipo lleva un tiempo trabajando en este problema y agradecemos cualquier idea. "
          "Encontró sus llaves debajo de la silla, justo donde las había dejado la noche anterior. "
          "Es una de las aves más grandes de la región y se ve a menudo cerca de lagos y ríos. "
          "La función devuelve una lista con un valor para cada línea del archivo.",
    "ru": "Погода была тёплая, поэтому мы пошли к старой мельнице и пообедали в саду. "
          "Она сказала мне, что в понедельник библиотека будет закрыта из-за праздника. "
          "Если хочешь понять, как это работает, сначала прочитай инструкцию. "
          "Они много лет живут в этом городе и знают всех на рынке. "
          "Когда уходит следующий поезд в город? Кажется, в половине восьмого. "
          "Наша команда давно работает над этой задачей, и мы будем рады любым идеям. "
          "Он нашёл свои ключи под стулом, там, где оставил их накануне вечером. "
          "Это одна из самых больших птиц в этих местах, её часто видят у озёр и рек. "
          "Функция возвращает список с одним значением для каждой строки файла.",
    "el": "Ο καιρός ήταν ζεστός, οπότε περπατήσαμε ως τον παλιό μύλο και φάγαμε στον κήπο. "
          "Μου είπε ότι η βιβλιοθήκη θα είναι κλειστή τη Δευτέρα λόγω της γιορτής. "
          "Αν θέλεις να καταλάβεις πώς λειτουργεί, διάβασε πρώτα τις οδηγίες. "
          "Ζουν σε αυτή την πόλη πολλά χρόνια και γνωρίζουν όλους στην αγορά. "
          "Τι ώρα φεύγει το επόμενο τρένο για την πόλη; Νομίζω στις επτάμισι. "
          "Η ομάδα μας δουλεύει καιρό σε αυτό το πρόβλημα και κάθε ιδέα είναι ευπρόσδεκτη. "
          "Βρήκε τα κλειδιά του κάτω από την καρέκλα, εκεί που τα είχε αφήσει το προηγούμενο βράδυ. "
          "Είναι ένα από τα μεγαλύτερα πουλιά της περιοχής και το βλέπουμε συχνά κοντά σε λίμνες. "
          "Η συνάρτηση επιστρέφει μια λίστα με μία τιμή για κάθε γραμμή του αρχείου.",
}
MAX_BITS_PER_CHAR = 7.0  # above this even the best model is lost: gibberish or an unknown language
LANGID_CHARS = 1000  # judging the first 1,000 characters is plenty, and keeps the stage fast


def _langid_normalize(text: str) -> str:
    """Lowercased, whitespace collapsed, a space at both ends (so the first and last word have a context)."""
    return " " + " ".join(text.lower().split()) + " "


class CharTrigramModel:
    """P(c | two previous characters), interpolated with bigram and add-one unigram estimates.

    Interpolation (weights 0.6, 0.3, 0.1) lets a model give a sensible probability to trigrams it never
    saw; the unigram term gives any character, even from another script, a small non-zero probability.
    """

    WEIGHTS = (0.6, 0.3, 0.1)
    ALPHABET = 4096  # room for characters never seen in training (add-one smoothing over this many)

    def __init__(self, text: str) -> None:
        text = _langid_normalize(text)
        self.unigrams = Counter(text)
        self.bigrams = Counter(text[i:i + 2] for i in range(len(text) - 1))
        self.trigrams = Counter(text[i:i + 3] for i in range(len(text) - 2))
        self.contexts1 = Counter(text[:-1])  # counts of a character as a context
        self.contexts2 = Counter(text[i:i + 2] for i in range(len(text) - 2))
        self.total = len(text)

    def log2prob(self, trigram: str) -> float:
        """log2 P(trigram[2] | trigram[:2])."""
        w3, w2, w1 = self.WEIGHTS
        p1 = (self.unigrams[trigram[2]] + 1) / (self.total + self.ALPHABET)
        c1 = self.contexts1[trigram[1]]
        p2 = self.bigrams[trigram[1:]] / c1 if c1 else 0.0
        c2 = self.contexts2[trigram[:2]]
        p3 = self.trigrams[trigram] / c2 if c2 else 0.0
        return math.log2(w3 * p3 + w2 * p2 + w1 * p1)


class LanguageIdentifier:
    """One character trigram model per language; `bits_per_char` scores a text under all of them at once."""

    def __init__(self, samples: dict[str, str] = LANGUAGE_SAMPLES) -> None:
        if not samples:
            raise ValueError("need at least one language sample to train on")
        self.languages = list(samples)
        self.models = [CharTrigramModel(text) for text in samples.values()]
        self.rows: dict[str, tuple[float, ...]] = {}  # trigram -> its log2 probability under each model

    def _row(self, trigram: str) -> tuple[float, ...]:
        """The trigram's log2 probability under every model, computed once per trigram and cached."""
        row = self.rows.get(trigram)
        if row is None:
            row = self.rows[trigram] = tuple(model.log2prob(trigram) for model in self.models)
        return row

    def bits_per_char(self, text: str) -> dict[str, float]:
        """Mean -log2 P(character | two before) of the text's first LANGID_CHARS characters, per language."""
        text = _langid_normalize(text[:LANGID_CHARS])
        trigrams = Counter(text[i:i + 3] for i in range(len(text) - 2))
        counts = np.fromiter(trigrams.values(), dtype=float, count=len(trigrams))
        logp = np.array([self._row(t) for t in trigrams]).reshape(len(trigrams), len(self.languages))
        bits = -(counts @ logp) / max(1, len(text) - 2)
        return dict(zip(self.languages, bits.tolist()))

    def identify(self, text: str, max_bits: float = MAX_BITS_PER_CHAR) -> tuple[str, float]:
        """(language code or "und", bits per character under the best model)."""
        if not text.strip():
            return "und", float("inf")
        scores = self.bits_per_char(text)
        best = min(scores, key=scores.get)
        return (best if scores[best] <= max_bits else "und"), scores[best]


_DEFAULT_IDENTIFIER: LanguageIdentifier | None = None


def default_identifier() -> LanguageIdentifier:
    """The identifier trained on LANGUAGE_SAMPLES (trained once, on first use)."""
    global _DEFAULT_IDENTIFIER
    if _DEFAULT_IDENTIFIER is None:
        _DEFAULT_IDENTIFIER = LanguageIdentifier()
    return _DEFAULT_IDENTIFIER


def language_reasons(text: str, identifier: LanguageIdentifier | None = None, keep: tuple[str, ...] = ("en",),
                     max_bits: float = MAX_BITS_PER_CHAR) -> list[str]:
    """Stage 2: ["language:xx"] unless the text is in one of the `keep` languages."""
    lang, _ = (identifier or default_identifier()).identify(text, max_bits)
    return [] if lang in keep else [f"language:{lang}"]
