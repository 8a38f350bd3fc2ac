"""The warehouse's transforms (one module per tier) and the DAG runner that orders and runs them.

``ALL`` lists every transform in declaration order; ``runner.run`` orders them by their ``after``
dependencies. Table-level lineage is ``Transform.inputs`` → ``Transform.outputs``.
"""

from __future__ import annotations

from cloud_ingest.warehouse.transforms import ads, dim_date, dwd, dws, quality, quality_losses
from cloud_ingest.warehouse.transforms.base import Context, Transform

ALL: tuple[Transform, ...] = (*dwd.TRANSFORMS, *dim_date.TRANSFORMS, *dws.TRANSFORMS, *ads.TRANSFORMS,
                              *quality_losses.TRANSFORMS, *quality.TRANSFORMS)

__all__ = ["ALL", "Context", "Transform"]
