"""FieldLab's desktop application (PySide6) and its command line."""
__version__ = "0.1.0"
