"""Benchmark: messages rendered per second by the fast path and by the exact path.

A realistic campaign (a 3-4 KB Markdown newsletter with headings, a dozen
personalization slots, an `{% if %}` block, a `{% for %}` list, nine tracked links,
a code block and the unsubscribe footer and pixel added by the renderer) is
compiled once; then `--recipients` generated recipients (seeded: names with
non-ASCII letters, a few attributes) are rendered with `CompiledCampaign.render`,
and a sample of them (`--exact-sample`, default 300, the path is slow) with
`render_exact`. Compilation is not timed. Progress goes to stderr, with how fast
this machine runs plain Python (`sum(range(1000))`, about 6 us on a current
laptop) to compare figures across machines; the last line on stdout is
`render: <n> msg/s fast, <m> msg/s exact`.

    uv run python bench/render.py --recipients 20000 [--exact-sample 300]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import timeit
import uuid

from pigeon_common.render import (
    CampaignSpec,
    RecipientSpec,
    TrackingSigner,
    compile_campaign,
    render_exact,
)

TEMPLATE = """# {{ campaign.name }}: the November letter

Hello **{{ recipient.name }}**,

thank you for being with us since {{ recipient.since }}. This month we have news from
{{ recipient.city }} and beyond, a few product updates and an invitation. As always,
you can read everything [on our website](https://www.example.com/news/2025-11) if
your mail program shows this message badly.

## What is new

- The new **Pigeon Pro** plan is out: [see the plans](https://www.example.com/pricing?ref=mail)
- Our mobile app now works offline ([App Store](https://apps.example.com/ios),
  [Google Play](https://apps.example.com/android))
- We moved our {{ recipient.city }} office: the new address is on
  [the contact page](https://www.example.com/contact#{{ recipient.city|lower }})
- Reports can now be exported as spreadsheets, and scheduled reports arrive in your
  inbox every Monday morning at the time you choose.

{% if recipient.plan == "pro" %}
### For our Pro customers

As a Pro customer you get early access to the reporting dashboard. Log in with
{{ recipient.email }} and open *Reports*. Your account manager, {{ recipient.manager }},
will call you this week to walk you through it.
{% endif %}

## Your reading list

{% for topic in recipient.topics %}
* **{{ topic|title }}**: the best three articles of the month
{% endfor %}

## From the blog

**Why your open rates are lower than you think.** Privacy features in mail programs
fetch images ahead of time, so an "open" is not always a reader. We explain what the
numbers still tell you and which ones to watch instead.
[Read the article](https://blog.example.com/open-rates)

**Five subject lines that worked.** We looked at a year of campaigns and picked the
subject lines with the most replies, not just the most opens. The winners are short,
specific and ask a question. [Read the article](https://blog.example.com/subject-lines)

**A checklist before you press send.** Links, images, the plain-text part, the
unsubscribe footer and a test to a real inbox: ten minutes that save a bad day.
[Download the checklist](https://blog.example.com/checklist.pdf)

## Tips from the support team

1. Keep your list clean: remove addresses that bounced twice.
2. Send a test to yourself and read it on a phone before every campaign.
3. Write the plain-text part for people, not for filters: short lines, real words.
4. Ask one question per newsletter; replies are the best signal you can get.

Questions? Write to {{ recipient.manager|lower }}@example.com or simply reply to this
message: it reaches a person, not a ticket queue. We answer within one working day.

## Event

Join us on **December 4th** at our yearly meetup. There are talks about deliverability,
about writing better subject lines, and about what makes people open a newsletter at
all. Seats are limited: [reserve yours now](https://events.example.com/meetup-2025).
We will send the recording to everyone who registers, also if you cannot make it.

```
Your code: {{ recipient.code }}
Valid until: 31 December
```

> "The best newsletter we read every month." — a reader from {{ recipient.city }}

Thanks for reading, {{ recipient.name.split(" ")[0] }}, and see you next month.

The team at Example
"""

FIRST = ["Anna", "Jörg", "Zoë", "Mikkel", "Ana", "Chloé", "Łukasz", "Sam", "Priya", "Björn"]
LAST = ["Smith", "Müller", "Núñez", "O'Brien", "Kowalski", "Larsen", "Dubois", "Rao"]
CITIES = ["Zürich", "Berlin", "København", "Lisbon", "Kraków", "Paris", "Mumbai"]
TOPICS = ["deliverability", "design", "analytics", "automation", "privacy"]


def recipients(count: int, seed: int) -> list[RecipientSpec]:
    rng = random.Random(seed)
    result = []
    for index in range(count):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        result.append(
            RecipientSpec(
                recipient_id=uuid.UUID(int=rng.getrandbits(128)),
                email=f"user{index}@example.org",
                name=name,
                attributes={
                    "city": rng.choice(CITIES),
                    "since": rng.randint(2010, 2025),
                    "plan": rng.choice(["free", "pro"]),
                    "manager": rng.choice(FIRST),
                    "topics": rng.sample(TOPICS, 3),
                    "code": f"PIGEON-{rng.randint(1000, 9999)}",
                },
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20000)
    parser.add_argument("--exact-sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    spec = CampaignSpec(
        campaign_id=uuid.UUID(int=1),
        name="Example News",
        subject="{{ recipient.name }}, your November letter from {{ recipient.city }}",
        template_markdown=TEMPLATE,
        from_name="Example News",
        from_address="news@example.com",
        public_base_url="https://t.example.com",
        message_id_domain="example.com",
    )
    signer = TrackingSigner([b"bench secret"])
    people = recipients(args.recipients, args.seed)
    print(f"template: {len(TEMPLATE.encode())} bytes; {len(people)} recipients", file=sys.stderr)
    calibration = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000
    print(f"machine: sum(range(1000)) takes {calibration * 1e6:.1f} us", file=sys.stderr)

    campaign = compile_campaign(spec, signer)
    for person in people[:50]:  # warm-up
        campaign.render(person)
    started = time.perf_counter()
    size = 0
    for person in people:
        size += len(campaign.render(person).raw)
    fast_seconds = time.perf_counter() - started
    fast = len(people) / fast_seconds
    print(
        f"fast: {fast_seconds * 1e6 / len(people):.0f} us/msg, mean {size / len(people):.0f} bytes",
        file=sys.stderr,
    )

    sample = people[: max(1, min(args.exact_sample, len(people)))]
    started = time.perf_counter()
    for person in sample:
        render_exact(spec, signer, person)
    exact_seconds = time.perf_counter() - started
    exact = len(sample) / exact_seconds
    print(f"exact: {exact_seconds * 1e6 / len(sample):.0f} us/msg", file=sys.stderr)
    print(f"render: {fast:.0f} msg/s fast, {exact:.0f} msg/s exact")


if __name__ == "__main__":
    main()
