"""The mirror's storage: image, undo data, progress, retention, disk-full recognition."""
