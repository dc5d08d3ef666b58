"""The clock: a scheduler process that enqueues periodic work (it does none itself)."""
