"""The apply loop: one consumer per site, per-volume appliers, the change-set buffer, dead letters."""
