"""FieldLab's Qt-free core: fields, signals, training, metrics and checkpoints.

Nothing in this package may import Qt, pyqtgraph, vispy or ``app`` (tests/test_import_contract.py).
"""
