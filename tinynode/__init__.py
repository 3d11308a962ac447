"""tinynode: a pocket-sized Bitcoin node."""
__version__ = "0.1.0"
