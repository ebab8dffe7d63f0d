"""Entry module for ``dramatiq loyalmail.worker``: the broker, then every registered actor."""

from loyalmail.broker import load_actors, use_uvloop

use_uvloop()
load_actors()
