"""Entry module for ``dramatiq loyalmail.worker``: the broker, then every registered actor."""

from loyalmail.broker import load_actors

load_actors()
