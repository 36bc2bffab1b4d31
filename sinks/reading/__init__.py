"""Reading topics once: small topics whole, a volume's partitions, the manifest contract, the stream head."""
