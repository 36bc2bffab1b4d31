"""tidemark: continuous block-level replication of disks and volumes, event-sourced on Kafka."""

__version__ = "0.1.0"
