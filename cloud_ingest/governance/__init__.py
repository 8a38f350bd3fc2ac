"""Data governance toolkit of the campus warehouse: word roots, data dictionary, catalog, classification,
lineage and row-level provenance (浙江省教育数据治理工作指南, 工作任务（四）and（十）).

Public surface (see docs/governance.md)::

    load_roots() -> RootLibrary; naming.check(lib, names.project_names()) -> NamingReport
"""
