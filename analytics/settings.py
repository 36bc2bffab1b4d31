"""Analytics settings, read from `TIDEMARK_ANALYTICS_*` environment variables (CLI flags override).

Every threshold of every alert is here, each default defined once.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnalyticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEMARK_ANALYTICS_", extra="ignore", frozen=True)

    app_id: str = Field(default="tidemark-analytics", description="faust app id = consumer group (prefixed)")
    web_port: int = Field(default=6066, description="dashboard, JSON endpoints and /metrics")
    web_bind: str = Field(default="127.0.0.1", description="address the web server listens on")
    commit_interval_s: float = Field(
        default=2.0, gt=0, description="the journal reader commits its offsets (after its state) this often"
    )
    window_s: float = Field(default=5.0, gt=0, description="tumbling window length, in message time")
    windows_kept: int = Field(default=120, gt=0, description="closed windows kept per volume for the charts")
    hot_regions: int = Field(default=10, gt=0, description="hot 1 MiB regions listed per window")
    heatmap_buckets: int = Field(default=64, gt=0, description="columns of the write heatmap per volume")
    points_kept: int = Field(default=200, gt=0, description="recovery points kept per volume for the timeline")
    # the encryption detector
    sample_budget: int = Field(
        default=64, gt=0, description="at most this many blocks are sampled per volume and window"
    )
    min_samples: int = Field(default=8, gt=0, description="a window with fewer samples is not judged")
    high_entropy_bits: float = Field(
        default=7.5, description="a sampled block at or above this many bits per byte counts as high entropy"
    )
    min_fraction: float = Field(
        default=0.6, description="suspected when this share of a window's samples is high entropy ..."
    )
    min_rise: float = Field(default=0.4, description="... and the share exceeds the volume's baseline by this")
    baseline_weight: float = Field(
        default=0.2, gt=0, le=1, description="weight of a normal window in the baseline (exponential average)"
    )
    warmup_windows: int = Field(default=1, ge=0, description="judged windows that set a baseline before any alert")
    clear_windows: int = Field(default=3, gt=0, description="normal windows in a row that end an episode")
    clean_point_grace_s: float = Field(
        default=30.0, description="message time an encryption alert waits for the recovery points to settle"
    )
    # mirrors and dead letters
    rpo_lag_s: float = Field(default=30.0, description="RPO_LAG_HIGH when a site's lag exceeds this")
    dead_letters: int = Field(default=1, gt=0, description="DEAD_LETTERS when a window holds this many")
