#!/usr/bin/env python3
"""Writes eval/conversations-set.json: a multi-session conversational
retrieval set made for AI Orchestra (Apache-2.0, like the repository).

Every line of it is produced here from a fixed seed, so the set is
reproducible and reviewable: `python3 eval/make_conversations.py` rewrites
the same file. Nothing is taken from any public benchmark; the people,
places and events are invented from the small vocabularies below.

Shape: 24 conversations between two friends, 12 sessions each (one every
one to three weeks from early 2023), 8-16 turns a session, each turn one
memory stored as "Speaker: text" with metadata {speaker, date_time, turn}
and the session's time as created_at. Facts are told the way people tell
them: across turns ("Guess what, we adopted a dog!" / "What's her name?" /
"Biscuit, a beagle."), across sessions (a sister introduced in one session,
her present in another), and among small talk.

Question kinds, each with the keys of every turn that holds its evidence:
- single-hop: one fact, asked in other words than it was told;
- multi-hop: the answer needs two or more turns (a fact told across turns,
  or across sessions);
- temporal: when something happened (the evidence is the turn whose
  session date answers it), or what happened in a named month;
- open-domain: a judgement from what someone said (would they enjoy X?).
"""

import json
import os
import random
from datetime import datetime, timedelta, timezone

SEED = 20261203
NAMES = [
    "Ann", "Bo", "Caroline", "Dev", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemi", "Luca", "Mara", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tess",
    "Umar", "Vera", "Wim", "Ximena", "Yara", "Zane", "Alba", "Bruno", "Chloe", "Dario",
    "Eva", "Felix", "Gina", "Hugo", "Ida", "Jamal", "Kira", "Leon", "Mina", "Nora",
    "Oskar", "Paula", "Rami", "Sofia", "Theo", "Uma", "Viktor", "Wren",
]
PETS = [("dog", "beagle"), ("dog", "border collie"), ("cat", "Maine Coon"),
        ("cat", "tabby"), ("rabbit", "lop-eared rabbit"), ("dog", "greyhound")]
PET_NAMES = ["Biscuit", "Pepper", "Juniper", "Mochi", "Rocket", "Clementine", "Waffles", "Olive"]
CITIES = [("Lisbon", "Belem Tower"), ("Kyoto", "Fushimi Inari shrine"), ("Reykjavik", "Hallgrimskirkja"),
          ("Cape Town", "Table Mountain"), ("Montreal", "Old Port"), ("Prague", "Charles Bridge"),
          ("Istanbul", "Blue Mosque"), ("Lima", "Miraflores cliffs"), ("Edinburgh", "castle"),
          ("Seoul", "Gyeongbokgung palace")]
JOBS = [("nurse", "St. Mary's hospital"), ("data analyst", "Northwind Logistics"),
        ("sous-chef", "Casa Verde"), ("teacher", "Riverside Primary"),
        ("architect", "Studio Halden"), ("paramedic", "the county ambulance service"),
        ("product designer", "Lumen Labs"), ("librarian", "the central library")]
RELATIVES = ["sister", "brother", "cousin", "aunt"]
SIBLING_NAMES = ["Clara", "Tomas", "Lena", "Marco", "Ruth", "Ivo", "Petra", "Aziz"]
TOWNS = ["Bristol", "Ghent", "Porto", "Tampere", "Leipzig", "Bergen"]
GIFTS = ["a vintage wristwatch", "a hand-knitted scarf", "a pottery class voucher",
         "a signed vinyl record", "a leather notebook", "a telescope"]
INSTRUMENTS = [("cello", "baroque"), ("piano", "jazz"), ("guitar", "flamenco"),
               ("violin", "folk"), ("saxophone", "swing"), ("drums", "funk")]
BOOKS = [("The Salt Orchard", "historical"), ("Glass Harbour", "crime"),
         ("A Map of Small Winds", "fantasy"), ("Northern Static", "science fiction"),
         ("The Ninth Lantern", "mystery"), ("Quiet Engines", "literary")]
DISHES = ["mushroom risotto", "lamb tagine", "ramen from scratch", "beef wellington",
          "a three-layer lemon cake", "pierogi"]
HOODS = ["the old harbour district", "a quiet street near the botanical garden",
         "the hills above the river", "the new quarter by the station", "a village just outside town"]
RACE_TIMES = ["1:52", "2:04", "1:47", "2:11", "1:58"]
OUTDOORS = [("hiking", "mountain trails every weekend"), ("kayaking", "paddling on the lake at dawn"),
            ("climbing", "the bouldering gym three nights a week"), ("cycling", "long rides through the countryside")]
SMALL_TALK = [
    "How was your week?", "Pretty busy, but good overall.", "That sounds lovely!",
    "Haha, typical.", "Oh no, I hope it gets better.", "Take care!", "Talk soon!",
    "I know what you mean.", "Totally agree.", "Anyway, enough about work.",
    "Did you see the weather forecast?", "It's been raining all week here.",
    "Thanks for asking!", "Same here, honestly.", "We should catch up properly soon.",
    "That made my day.", "I'm so tired today.", "Coffee helps, as always.",
    "Let me know if you need anything.", "Good luck with everything!",
    "Sorry, I've been slow to reply.", "No worries at all.", "Exactly!",
    "I'll tell you more next time.", "Fingers crossed.", "Wow, really?",
    "That's so exciting!", "Have a great weekend!", "Speak later!", "Ha, fair enough.",
]


def month_year(d):
    return d.strftime("%B %Y")


def human(d):
    return f"{d.day} {d.strftime('%B %Y')}"


class Conversation:
    def __init__(self, index, a, b, rng, start):
        self.index, self.a, self.b, self.rng = index, a, b, rng
        self.sessions = []
        day = start
        for _ in range(12):
            self.sessions.append({"date": day, "turns": []})
            day += timedelta(days=rng.randint(7, 21), hours=rng.randint(-3, 3))
        self.questions = []

    def say(self, session, speaker, text):
        s = self.sessions[session]
        key = f"c{self.index:02d}-s{session:02d}-t{len(s['turns']):02d}"
        s["turns"].append({"key": key, "speaker": speaker, "text": text})
        return key

    def chat(self, session, n):
        speakers = [self.a, self.b]
        for i in range(n):
            self.say(session, speakers[i % 2], self.rng.choice(SMALL_TALK))

    def ask(self, question, answers, kind):
        self.questions.append({"question": question, "answers": answers, "kind": kind})

    def other(self, p):
        return self.b if p == self.a else self.a


def build(conv, rng):
    """Puts each person's facts into sessions, with questions about them."""
    c = conv
    slots = list(range(12))
    for person in (c.a, c.b):
        friend = c.other(person)
        rng.shuffle(slots)
        s = iter(slots)

        # A pet, told across three turns: the name and breed are not in the
        # turn that says "dog".
        species, breed = rng.choice(PETS)
        pet = rng.choice(PET_NAMES)
        k = next(s)
        c.chat(k, rng.randint(1, 3))
        t1 = c.say(k, person, f"Guess what, we adopted a {species} from the shelter on Saturday!")
        c.say(k, friend, "No way, that's wonderful! What's her name?")
        t3 = c.say(k, person, f"{pet}. She's a {breed} and already rules the house.")
        c.chat(k, rng.randint(1, 3))
        c.ask(f"What breed is {person}'s {species}?", [t1, t3], "multi-hop")
        c.ask(f"What did {person} name the animal from the shelter?", [t1, t3], "multi-hop")
        c.ask(f"When did {person} adopt a pet?", [t1], "temporal")

        # A trip.
        city, sight = rng.choice(CITIES)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        trip = c.say(k, person, f"Just got back from {city}. Seeing the {sight} at sunrise was unreal.")
        c.say(k, friend, f"Jealous! Was {city} as busy as people say?")
        c.say(k, person, "Only in the afternoons, the mornings were calm.")
        c.chat(k, rng.randint(1, 3))
        c.ask(f"Which landmark did {person} visit on the {city} trip?", [trip], "single-hop")
        c.ask(f"When was {person} in {city}?", [trip], "temporal")
        date = c.sessions[k]["date"]
        c.ask(f"Where did {person} travel in {month_year(date)}?", [trip], "temporal")

        # A second trip in another session, for a question over both.
        city2, sight2 = rng.choice([x for x in CITIES if x[0] != city])
        k2 = next(s)
        c.chat(k2, rng.randint(1, 2))
        trip2 = c.say(k2, person, f"Booked a long weekend in {city2}, I want to see the {sight2}.")
        c.say(k2, friend, "Send photos!")
        c.chat(k2, rng.randint(1, 3))
        c.ask(f"Which cities has {person} been to or planned to visit?", [trip, trip2], "multi-hop")

        # A new job, and a move after it (evidence in two sessions).
        job, employer = rng.choice(JOBS)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        started = c.say(k, person, f"First week as a {job} at {employer} is done. Exhausting but great.")
        c.say(k, friend, "Congratulations! Are the colleagues nice?")
        c.say(k, person, "Very. My team lead even baked for my first day.")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"Where does {person} work now?", [started], "single-hop")
        c.ask(f"What is {person}'s new occupation?", [started], "single-hop")
        hood = rng.choice(HOODS)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        moved = c.say(k, person, f"We finally moved! The new flat is in {hood}, closer to the new job.")
        c.say(k, friend, "How is the commute now?")
        c.say(k, person, "Fifteen minutes on foot. Life-changing.")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"Where does the {job} live now?", [started, moved], "multi-hop")
        c.ask(f"When did {person} move house?", [moved], "temporal")

        # A relative introduced in one session, their present in another.
        rel, relname = rng.choice(RELATIVES), rng.choice(SIBLING_NAMES)
        town, gift = rng.choice(TOWNS), rng.choice(GIFTS)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        intro = c.say(k, person, f"My {rel} {relname} is coming over from {town} next month.")
        c.say(k, friend, "Oh nice, you must be looking forward to that.")
        c.chat(k, rng.randint(0, 2))
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        present = c.say(k, person, f"{relname} surprised me with {gift} for my birthday!")
        c.say(k, friend, "That's so thoughtful.")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"What did {person}'s {rel} give them for their birthday?", [intro, present], "multi-hop")
        c.ask(f"Where does {person}'s {rel} live?", [intro], "single-hop")

        # A hobby and what it says about them.
        instrument, genre = rng.choice(INSTRUMENTS)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        music = c.say(k, person, f"I've been practising {instrument} every evening, mostly {genre} pieces.")
        c.say(k, friend, "Play me something next time!")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"Which instrument does {person} play?", [music], "single-hop")
        c.ask(f"Would {person} rather go to a {genre} concert or a techno rave?", [music], "open-domain")

        activity, detail = rng.choice(OUTDOORS)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        outdoors = c.say(k, person, f"Honestly the best part of my week is {detail}.")
        c.say(k, friend, f"You and your {activity}! I could never.")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"Would {person} enjoy an active holiday outdoors?", [outdoors], "open-domain")

        book, bgenre = rng.choice(BOOKS)
        dish = rng.choice(DISHES)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        reading = c.say(k, person, f"I can't put down '{book}', it's the best {bgenre} novel in ages.")
        c.say(k, friend, "Lend it to me when you're done?")
        cooked = c.say(k, person, f"Sure. Also, I made {dish} yesterday, first attempt, and it worked!")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"What is {person} reading at the moment?", [reading], "single-hop")
        c.ask(f"Is {person} someone who likes to cook?", [cooked], "open-domain")
        c.ask(f"Which genre of books does {person} seem to like?", [reading], "open-domain")

        race = rng.choice(RACE_TIMES)
        k = next(s)
        c.chat(k, rng.randint(1, 2))
        ran = c.say(k, person, f"Finished my first half marathon on Sunday in {race}!")
        c.say(k, friend, "Incredible, how are your legs?")
        c.chat(k, rng.randint(0, 2))
        c.ask(f"How long did it take {person} to run the half marathon?", [ran], "single-hop")
        c.ask(f"When did {person} run a half marathon?", [ran], "temporal")

    # Sessions that got no fact still hold a conversation.
    for k, s in enumerate(c.sessions):
        if len(s["turns"]) < 8:
            c.chat(k, 8 - len(s["turns"]))


def main():
    rng = random.Random(SEED)
    names = NAMES[:]
    rng.shuffle(names)
    memories, questions = [], []
    for i in range(24):
        a, b = names[(2 * i) % len(names)], names[(2 * i + 1) % len(names)]
        start = datetime(2023, 1, 2, 18, 0, tzinfo=timezone.utc) + timedelta(days=rng.randint(0, 60))
        conv = Conversation(i, a, b, rng, start)
        build(conv, rng)
        for n, s in enumerate(conv.sessions):
            for t, turn in enumerate(s["turns"]):
                said = s["date"] + timedelta(minutes=2 * t)
                memories.append({
                    "key": turn["key"],
                    "user_id": f"pair-{i:02d}",
                    "session_id": f"c{i:02d}-s{n:02d}",
                    "created_at": said.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "metadata": {"speaker": turn["speaker"], "date_time": human(said), "turn": t},
                    "text": f"{turn['speaker']}: {turn['text']}",
                })
        questions.extend(conv.questions)
    out = {
        "about": ("A multi-session conversational retrieval set written for AI Orchestra "
                  "(Apache-2.0, like the rest of the repository), generated by "
                  "eval/make_conversations.py from a fixed seed: 24 conversations of 12 "
                  "sessions, one turn per memory as 'Speaker: text' with metadata speaker, "
                  "date_time and turn. Kinds: single-hop, multi-hop (evidence in two or more "
                  "turns), temporal, open-domain."),
        "namespace": "conversations",
        "memories": memories,
        "questions": questions,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conversations-set.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    kinds = {}
    for q in questions:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    print(f"{path}: {len(memories)} turns, {len(questions)} questions {kinds}")


if __name__ == "__main__":
    main()
