"""Data for the engine: :mod:`.samplers` (training order, evaluation shards) and :mod:`.corpus` (token shards)."""
