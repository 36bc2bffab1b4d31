"""Errors of the shared core: settings, Kafka clients, the local broker."""

from tidemark.exceptions import ConfigurationError, TidemarkError


class KafkaError(TidemarkError):
    """Kafka could not be reached or refused a request."""


class TopicMissingError(ConfigurationError):
    """A topic of the design does not exist on the cluster (`tidemark topics create` makes them)."""


class NoBrokerError(ConfigurationError):
    """No cluster is configured and no local broker runs."""


class LocalBrokerError(TidemarkError):
    """The Maven-assembled local broker could not be built, started or stopped."""


class InvalidNameError(ConfigurationError):
    """A volume, site or group name that could escape its folder or topic key."""


class UnknownVolumeError(ConfigurationError):
    """The volume is not in the registry."""


class VolumeSpecError(ConfigurationError):
    """A volume definition that cannot be tracked (size or block size)."""


class NbdProtocolError(TidemarkError):
    """A client broke the NBD protocol; that connection is closed."""


class NbdServerError(ConfigurationError):
    """The NBD server cannot listen on the requested address."""


class MetricsServerError(ConfigurationError):
    """The Prometheus metrics endpoint cannot listen on the requested port."""


class KafkaAuthenticationError(KafkaError):
    """The cluster refused the configured credentials."""

    exit_code = 2
