"""Bounces and complaints after the fact (docs/sending.md, "Bounces and complaints after the
fact"): VERP return paths (:mod:`.verp`), reading DSN and ARF reports (:mod:`.dsn`), the
signed webhooks (:mod:`.webhooks`, :mod:`.controllers`) and recording them with the
suppressions they cause (:mod:`.services`)."""
