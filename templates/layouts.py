"""The branded layouts a campaign can start from: an MJML file each, plus starting blocks.

The MJML files live in ``templates/layouts/``; each extends ``_frame.mjml.jinja``, the
locked brand frame, and may only restyle its header. A campaign chooses a layout by key
and edits the blocks; it can never remove the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyalmail.errors import _
from templates.blocks import Block, Button, Columns, Divider, Heading, Offer, Text


@dataclass(frozen=True, slots=True)
class Layout:
    key: str
    name: str
    description: str
    #: What a new campaign on this layout starts with; the marketer edits from here.
    starter_blocks: tuple[Block, ...]


LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        Layout(
            key="classic",
            name=_("Classic newsletter"),
            description=_("Your logo and name on white, then headings, text and pictures."),
            starter_blocks=(
                Heading(text="{{ salutation }},"),
                Text(markdown="Here is what is new at our shop this month."),
                Button(label="Visit our shop", href="https://example.com"),
            ),
        ),
        Layout(
            key="offer",
            name=_("Offer"),
            description=_("A header in your brand colour and two offers side by side."),
            starter_blocks=(
                Heading(text="{{ salutation }}, we have an offer for you!"),
                Text(markdown="Only this week: **20 % off** for our loyal customers."),
                Columns(
                    items=[
                        Offer(
                            title="Offer one",
                            price="19.90",
                            button_label="Shop now",
                            href="https://example.com",
                        ),
                        Offer(
                            title="Offer two",
                            price="29.90",
                            button_label="Shop now",
                            href="https://example.com",
                        ),
                    ]
                ),
                Divider(),
                Text(markdown="See you soon!"),
            ),
        ),
        Layout(
            key="birthday",
            name=_("Birthday greeting"),
            description=_("A warm greeting with a cake, for the birthday group."),
            starter_blocks=(
                Heading(text="Happy birthday, {{ first_name | dear customer }}!"),
                Text(markdown="To celebrate, your next purchase comes with a little gift."),
                Button(label="Claim your gift", href="https://example.com"),
            ),
        ),
    )
}

DEFAULT_LAYOUT = "classic"
