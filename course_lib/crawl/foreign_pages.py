"""Defect "foreign": pages in French, German, Spanish, Russian or Greek.

Everyday sentences (a village, the market, a train, a recipe), so that only the language gives them
away; Russian and Greek also test another script (which cannot be encoded in windows-1252).
"""

from __future__ import annotations

import random

from course_lib.crawl.blocks import Block, sentences_to_paragraphs

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
    return blocks + [("p", p) for p in sentences_to_paragraphs(rng, sentences)], lang
