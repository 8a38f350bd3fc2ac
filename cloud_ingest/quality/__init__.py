"""Data quality (clause 六): configuration (weights, thresholds, plausibility limits), findings and the report.

The quality *tables* are computed by warehouse transforms (``cloud_ingest.warehouse.transforms.quality``);
this package holds what they read (:mod:`.config`) and what reads them (:mod:`.findings`, :mod:`.report`).
"""
