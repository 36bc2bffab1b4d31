"""`tidemark status`: what every stage did for each volume, read only from the Kafka topics."""
